// Routes on tasks: a worker reports progress, completion or failure of a task a supervisor spawned.

import type { FastifyInstance } from 'fastify';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { taskEventBody, taskIdParams, type TaskEventBody, type TaskIdParams } from '../schemas.js';
import { describeSupervisor, type TaskResponse } from '../views.js';

export function registerTaskRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.post<{ Params: TaskIdParams; Body: TaskEventBody; Reply: TaskResponse }>(
    '/tasks/:taskId/events',
    { schema: { params: taskIdParams, body: taskEventBody } },
    async (request) => {
      const step = await runtime.reportTaskEvent(request.params.taskId, request.body);
      return { taskId: request.params.taskId, supervisor: await describeSupervisor(runtime, step.after.context.supervisorId) };
    },
  );
}
