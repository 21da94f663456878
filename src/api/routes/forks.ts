// Forks over HTTP: make a new supervisor from a checkpoint of another, and read a supervisor's lineage.

import type { FastifyInstance } from 'fastify';
import { InvalidSupervisorDataError } from '../../domain/errors.js';
import type { ForkedTask, ForkLineage } from '../../persistence/supervisor-repository.js';
import { ID_TAKEN, type SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { IdempotencyKeyReusedError } from '../errors.js';
import { idempotencyKeyOf, idFromIdempotencyKey } from '../idempotency-key.js';
import { forkBody, listLimitQuery, supervisorIdParams, type ForkBody, type ListLimitQuery, type SupervisorIdParams } from '../schemas.js';
import { describeAfterCommit, type SupervisorView } from '../views.js';
import { REPLAY_HEADER } from './supervisors.js';

export interface ForkResponse {
  supervisor: SupervisorView;
  forkedFrom: { supervisorId: string; checkpointSeq: number };
  /** The checkpoint's running tasks and the tasks spawned for the fork in their place. */
  tasks: ForkedTask[];
}

export function registerForkRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.post<{ Params: SupervisorIdParams; Body: ForkBody | undefined; Reply: ForkResponse }>(
    '/supervisors/:id/fork',
    {
      schema: { params: supervisorIdParams, body: forkBody },
      // The body is optional: none forks the newest checkpoint under a new id (validation runs after this hook).
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const source = request.params.id.toLowerCase();
      const body = request.body ?? {};
      const id = body.id ?? idFromIdempotencyKey(request, `supervisors/${source}/fork`);
      try {
        const result = await runtime.fork(source, { ...body, ...(id !== undefined ? { id } : {}) });
        // The fork runs here, so a read-back the database cannot answer falls back to what this daemon committed.
        return reply.code(201).send({ supervisor: await describeAfterCommit(runtime, result.supervisor.id), forkedFrom: result.forkedFrom, tasks: result.tasks });
      } catch (error) {
        // The caller's id is its idempotency key: a retry (a fork of the same source, and checkpoint when named) answers
        // with the fork the first one made.
        if (id === undefined || !(error instanceof InvalidSupervisorDataError) || error.field !== 'id' || error.detail !== ID_TAKEN) throw error;
        const lineage = await runtime.lineage(id);
        const origin = lineage.forkedFrom;
        if (!origin || origin.sourceId !== source || (body.checkpointSeq !== undefined && origin.checkpointSeq !== body.checkpointSeq)) {
          // An id the key stands for was taken by the key's first fork: the key is what to change.
          const key = body.id === undefined ? idempotencyKeyOf(request) : undefined;
          if (key !== undefined && origin) throw new IdempotencyKeyReusedError(key, 'fork', id, `supervisor ${id}, ${JSON.stringify((await runtime.describe(id)).name)}`);
          throw error;
        }
        reply.header(REPLAY_HEADER, 'true');
        return reply.code(200).send({ supervisor: await describeAfterCommit(runtime, id), forkedFrom: { supervisorId: origin.sourceId, checkpointSeq: origin.checkpointSeq }, tasks: origin.tasks });
      }
    },
  );

  app.get<{ Params: SupervisorIdParams; Querystring: ListLimitQuery; Reply: ForkLineage }>(
    '/supervisors/:id/forks',
    { schema: { params: supervisorIdParams, querystring: listLimitQuery } },
    async (request) => runtime.lineage(request.params.id, { limit: Math.min(Number(request.query.limit ?? 1000), 1000) }),
  );
}
