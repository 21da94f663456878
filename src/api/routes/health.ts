// GET /healthz: is the database answering, is the transport connected. Open without a token, for probes.

import type { FastifyInstance } from 'fastify';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import type { HealthResponse } from '../views.js';

export const HEALTH_PATH = '/healthz';

export function registerHealthRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.get<{ Reply: HealthResponse }>(HEALTH_PATH, async (_request, reply) => {
    const health = await runtime.health();
    return reply.code(health.ok ? 200 : 503).send(health);
  });
}
