// GET /dead-letters, GET /supervisors/:id/questions and GET /supervisors/:id/tasks: every question a supervisor asked (with its first
// answer) and every task it spawned (with its outcome). The snapshot keeps only open work; these keep the rest.

import type { FastifyInstance } from 'fastify';
import type { DeadLetter } from '../../persistence/ownership/dead-letters.js';
import type { QuestionRecord, TaskRecord } from '../../persistence/supervisor-repository.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { noQuery, supervisorIdParams, wholeNumberText, type SupervisorIdParams } from '../schemas.js';

const questionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { answered: { type: 'string', enum: ['true', 'false'] }, limit: wholeNumberText(5, 0) },
} as const;

const deadLettersQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: wholeNumberText(4, 0) },
} as const;

export function registerHistoryRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  // Inbound messages terminated because no retry could apply them, newest first, with why.
  app.get<{ Querystring: { limit?: string }; Reply: { deadLetters: DeadLetter[]; total: number } }>(
    '/dead-letters',
    { schema: { querystring: deadLettersQuery } },
    async (request) => runtime.deadLetters({ limit: Math.min(Number(request.query.limit ?? 100), 1_000) }),
  );

  app.get<{ Params: SupervisorIdParams; Querystring: { answered?: 'true' | 'false'; limit?: string }; Reply: { questions: QuestionRecord[] } }>(
    '/supervisors/:id/questions',
    { schema: { params: supervisorIdParams, querystring: questionsQuery } },
    async (request) => {
      const { answered, limit } = request.query;
      const questions = await runtime.questions(request.params.id, {
        ...(answered !== undefined ? { answered: answered === 'true' } : {}),
        limit: Math.min(Number(limit ?? 100), 10_000),
      });
      return { questions };
    },
  );

  app.get<{ Params: SupervisorIdParams; Reply: { tasks: TaskRecord[] } }>('/supervisors/:id/tasks', { schema: { params: supervisorIdParams, querystring: noQuery } }, async (request) => ({
    tasks: await runtime.tasks(request.params.id),
  }));
}
