// Restoration over HTTP: resume one supervisor through the protocol, and what the daemon restored when it started.

import type { FastifyInstance } from 'fastify';
import type { RestorationInfo } from '../../domain/restoration.js';
import { lastRestoreAllSummary, resumeSupervisor, type RestoreAllSummary } from '../../runtime/restoration.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { supervisorIdParams, type SupervisorIdParams } from '../schemas.js';

export function registerRestorationRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  // Stops the live actor if this daemon runs it, then runs the whole protocol; answers with its RestorationInfo.
  app.post<{ Params: SupervisorIdParams; Reply: RestorationInfo }>('/supervisors/:id/resume', { schema: { params: supervisorIdParams } }, async (request) =>
    resumeSupervisor(runtime, request.params.id),
  );

  app.get<{ Reply: RestoreAllSummary | { total: 0; restored: 0; fromCheckpoint: 0; startedFresh: 0; failed: []; durationMs: 0; results: [] } }>(
    '/restorations',
    async () => lastRestoreAllSummary(runtime) ?? { total: 0, restored: 0, fromCheckpoint: 0, startedFresh: 0, failed: [], durationMs: 0, results: [] },
  );
}
