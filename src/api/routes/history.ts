// GET /supervisors/:id/questions and GET /supervisors/:id/tasks: every question a supervisor asked (with its first
// answer) and every task it spawned (with its outcome). The snapshot keeps only open work; these keep the rest.

import type { FastifyInstance } from 'fastify';
import type { QuestionRecord, TaskRecord } from '../../persistence/supervisor-repository.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { supervisorIdParams, type SupervisorIdParams } from '../schemas.js';

const questionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { answered: { type: 'string', enum: ['true', 'false'] }, limit: { type: 'string', pattern: '^[0-9]{1,5}$' } },
} as const;

export function registerHistoryRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
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

  app.get<{ Params: SupervisorIdParams; Reply: { tasks: TaskRecord[] } }>('/supervisors/:id/tasks', { schema: { params: supervisorIdParams } }, async (request) => ({
    tasks: await runtime.tasks(request.params.id),
  }));
}
