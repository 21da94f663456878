// Routes on supervisors: spawn, list, describe, send events, ask, answer and withdraw questions, spawn tasks, list checkpoints.

import type { FastifyInstance } from 'fastify';
import { DatabaseUnavailableError, EventRefusedError, InvalidSupervisorDataError, SupervisorNotFoundError } from '../../domain/errors.js';
import { phaseAlreadyReason } from '../../machines/supervisor-guards.js';
import { QuestionAlreadyAnsweredError } from '../../runtime/errors.js';
import { ID_TAKEN, type SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { IdempotencyKeyReusedError } from '../errors.js';
import { idempotencyKeyOf, idFromIdempotencyKey } from '../idempotency-key.js';
import {
  answerBody,
  withdrawBody,
  type WithdrawBody,
  askQuestionBody,
  eventBody,
  listCheckpointsQuery,
  listSupervisorsQuery,
  MAX_SUPERVISORS_PAGE,
  MAX_CHECKPOINTS,
  questionParams,
  spawnSupervisorBody,
  spawnTaskBody,
  supervisorIdParams,
  type AnswerBody,
  type AskQuestionBody,
  type EventBody,
  type ListCheckpointsQuery,
  type ListSupervisorsQuery,
  type QuestionParams,
  type SpawnSupervisorBody,
  type SpawnTaskBody,
  type SupervisorIdParams,
} from '../schemas.js';
import {
  checkpointView,
  committedView,
  describeAfterCommit,
  describeSupervisor,
  supervisorView,
  type CheckpointListResponse,
  type QuestionAskedResponse,
  type SupervisorListResponse,
  type SupervisorView,
  type TaskResponse,
} from '../views.js';

/** Set on a reply to a retried write that was recognised by the caller's id and not applied a second time. */
export const REPLAY_HEADER = 'idempotent-replay';

export function registerSupervisorRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.post<{ Body: SpawnSupervisorBody; Reply: SupervisorView }>('/supervisors', { schema: { body: spawnSupervisorBody } }, async (request, reply) => {
    const { phase, driver, name } = request.body;
    const id = request.body.id ?? idFromIdempotencyKey(request, 'supervisors');
    let supervisor;
    try {
      supervisor = await runtime.spawn({
        name,
        ...(id !== undefined ? { id } : {}),
        ...(phase !== undefined ? { phase } : {}),
        ...(driver !== undefined ? { driver } : {}),
      });
    } catch (error) {
      // The caller's id is its idempotency key: a retried spawn (same id, same name) answers with what the first made.
      if (id !== undefined && error instanceof InvalidSupervisorDataError && error.field === 'id' && error.detail === ID_TAKEN) {
        let existing: SupervisorView;
        try {
          existing = await describeSupervisor(runtime, id);
        } catch (readError) {
          if (readError instanceof SupervisorNotFoundError) throw error;
          // The row cannot be read now: the supervisor this daemon runs under the id tells whether this is the retry;
          // without it the answer is the 503 (retry later), never "taken".
          const running = runtime.get(id);
          if (!(readError instanceof DatabaseUnavailableError) || !running) throw readError;
          existing = committedView(runtime, running);
        }
        // "Taken" only when what holds the id is known to differ; an id the key stands for was taken by the key's first spawn.
        if (existing.name === name.trim()) return reply.code(200).header(REPLAY_HEADER, 'true').send(existing);
        const key = request.body.id === undefined ? idempotencyKeyOf(request) : undefined;
        if (key !== undefined) throw new IdempotencyKeyReusedError(key, 'spawn', existing.id, `supervisor ${existing.id}, ${JSON.stringify(existing.name)}`);
      }
      throw error;
    }
    return reply.code(201).send(await describeAfterCommit(runtime, supervisor.id));
  });

  app.get<{ Querystring: ListSupervisorsQuery; Reply: SupervisorListResponse }>(
    '/supervisors',
    { schema: { querystring: listSupervisorsQuery } },
    async (request) => {
      const { limit, after } = request.query;
      const { supervisors, invalid, next, total } = await runtime.listSupervisors({
        pendingQuestionsOnly: request.query.pendingQuestions === 'true',
        limit: Math.min(limit === undefined ? MAX_SUPERVISORS_PAGE : Number(limit), MAX_SUPERVISORS_PAGE),
        ...(after !== undefined ? { after: after.toLowerCase() } : {}),
      });
      return {
        supervisors: supervisors.map((state) => supervisorView(runtime, state)),
        invalid: invalid.map((error) => ({ id: error.supervisorId ?? '', problems: error.problems })),
        next,
        total,
      };
    },
  );

  app.get<{ Params: SupervisorIdParams; Reply: SupervisorView }>('/supervisors/:id', { schema: { params: supervisorIdParams } }, async (request) =>
    describeSupervisor(runtime, request.params.id),
  );


  app.post<{ Params: SupervisorIdParams; Body: EventBody; Reply: SupervisorView }>(
    '/supervisors/:id/events',
    { schema: { params: supervisorIdParams, body: eventBody } },
    async (request, reply) => {
      // runtime.send resolves only after the save point committed, so the fresh read below shows the new state.
      try {
        await runtime.send(request.params.id, request.body);
      } catch (error) {
        // A retried SET_PHASE finds the phase it set: it was applied, answer as then (no second step).
        const { body } = request;
        if (!(error instanceof EventRefusedError) || body.type !== 'SET_PHASE' || error.reason !== phaseAlreadyReason(body.phase)) throw error;
        reply.header(REPLAY_HEADER, 'true');
      }
      return describeAfterCommit(runtime, request.params.id);
    },
  );

  app.post<{ Params: SupervisorIdParams; Body: AskQuestionBody; Reply: QuestionAskedResponse }>(
    '/supervisors/:id/questions',
    { schema: { params: supervisorIdParams, body: askQuestionBody } },
    async (request, reply) => {
      const callerQuestionId = request.body.questionId ?? idFromIdempotencyKey(request, `supervisors/${request.params.id}/questions`);
      const asked = await runtime.askQuestion(request.params.id, { ...request.body, ...(callerQuestionId !== undefined ? { questionId: callerQuestionId } : {}) }).catch(async (error: unknown) => {
        // The id the key stands for was asked with another question: the key is what to change, not an id never chosen.
        const key = request.body.questionId === undefined ? idempotencyKeyOf(request) : undefined;
        if (key === undefined || callerQuestionId === undefined || !(error instanceof EventRefusedError) || error.eventType !== 'ASK_QUESTION') throw error;
        const earlier = (await runtime.questions(request.params.id).catch(() => [])).find((question) => question.id === callerQuestionId);
        if (!earlier || earlier.question === request.body.question) throw error;
        throw new IdempotencyKeyReusedError(key, 'question', request.params.id, `question ${callerQuestionId}, ${JSON.stringify(earlier.question)}`);
      });
      const { questionId, replayed } = asked;
      if (replayed) reply.header(REPLAY_HEADER, 'true');
      return reply.code(replayed ? 200 : 201).send({ questionId, supervisor: await describeAfterCommit(runtime, request.params.id) });
    },
  );

  app.post<{ Params: QuestionParams; Body: AnswerBody; Reply: SupervisorView }>(
    '/supervisors/:id/questions/:questionId/answer',
    { schema: { params: questionParams, body: answerBody } },
    async (request, reply) => {
      try {
        await runtime.answerQuestion(request.params.id, request.params.questionId, request.body.answer);
      } catch (error) {
        // The same answer again is a retry of an answer whose outcome the caller did not learn: it was applied once.
        if (!(error instanceof QuestionAlreadyAnsweredError) || error.firstAnswer !== request.body.answer) throw error;
        reply.header(REPLAY_HEADER, 'true');
      }
      return describeAfterCommit(runtime, request.params.id);
    },
  );

  app.post<{ Params: QuestionParams; Body: WithdrawBody | undefined; Reply: SupervisorView }>(
    '/supervisors/:id/questions/:questionId/withdraw',
    {
      schema: { params: questionParams, body: withdrawBody },
      // The body is optional: no body means no reason (validation runs after this hook).
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      await runtime.withdrawQuestion(request.params.id, request.params.questionId, request.body?.reason);
      return describeAfterCommit(runtime, request.params.id);
    },
  );

  app.post<{ Params: SupervisorIdParams; Body: SpawnTaskBody; Reply: TaskResponse }>(
    '/supervisors/:id/tasks',
    { schema: { params: supervisorIdParams, body: spawnTaskBody } },
    async (request, reply) => {
      const { description } = request.body;
      const callerTaskId = request.body.taskId ?? idFromIdempotencyKey(request, `supervisors/${request.params.id}/tasks`);
      const { taskId, replayed } = await runtime.spawnTask(request.params.id, { description, ...(callerTaskId !== undefined ? { taskId: callerTaskId } : {}) });
      if (replayed) reply.header(REPLAY_HEADER, 'true');
      return reply.code(replayed ? 200 : 201).send({ taskId, supervisor: await describeAfterCommit(runtime, request.params.id) });
    },
  );

  app.get<{ Params: SupervisorIdParams; Querystring: ListCheckpointsQuery; Reply: CheckpointListResponse }>(
    '/supervisors/:id/checkpoints',
    { schema: { params: supervisorIdParams, querystring: listCheckpointsQuery } },
    async (request) => {
      const { id } = request.params;
      const limit = Math.min(Number(request.query.limit ?? 100), MAX_CHECKPOINTS);
      const beforeSeq = request.query.beforeSeq !== undefined ? { beforeSeq: Number(request.query.beforeSeq) } : {};
      const checkpoints = await runtime.checkpoints(id, { limit, ...beforeSeq });
      return { checkpoints: checkpoints.map((checkpoint) => checkpointView(checkpoint, request.query.snapshots === 'true')) };
    },
  );
}
