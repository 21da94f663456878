// Routes on tasks: a worker reports progress, completion or failure of a task a supervisor spawned.

import type { FastifyInstance } from 'fastify';
import { EventRefusedError } from '../../domain/errors.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { REPLAY_HEADER } from './supervisors.js';
import { taskEventBody, taskIdParams, type TaskEventBody, type TaskIdParams } from '../schemas.js';
import { describeAfterCommit, type TaskResponse } from '../views.js';

export function registerTaskRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.post<{ Params: TaskIdParams; Body: TaskEventBody; Reply: TaskResponse }>(
    '/tasks/:taskId/events',
    { schema: { params: taskIdParams, body: taskEventBody } },
    async (request, reply) => {
      const { taskId } = request.params;
      let supervisorId: string;
      try {
        supervisorId = (await runtime.reportTaskEvent(taskId, request.body)).after.context.supervisorId;
      } catch (error) {
        // The same outcome again is a retry of a report whose reply was lost: it was applied once, answer as then.
        if (!(error instanceof EventRefusedError) || !error.supervisorId || request.body.type === 'progress') throw error;
        const stored = (await runtime.tasks(error.supervisorId)).find((task) => task.id === taskId);
        const same =
          stored !== undefined &&
          stored.status === request.body.type &&
          (request.body.type === 'completed' ? (stored.result ?? undefined) === request.body.result : (stored.error ?? undefined) === request.body.error);
        if (!same) throw error;
        reply.header(REPLAY_HEADER, 'true');
        supervisorId = error.supervisorId;
      }
      return { taskId, supervisor: await describeAfterCommit(runtime, supervisorId) };
    },
  );
}
