// GET /metrics: the runtime's Prometheus metrics (behind the token like every route but /healthz).

import type { FastifyInstance } from 'fastify';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';

export function registerMetricsRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.get('/metrics', async (_request, reply) => {
    const { contentType, text } = await runtime.metrics();
    return reply.header('content-type', contentType).send(text);
  });
}
