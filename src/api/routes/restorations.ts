// Restoration over HTTP: resume one supervisor through the protocol, and what the daemon restored when it started.

import type { FastifyInstance } from 'fastify';
import type { RestorationInfo } from '../../domain/restoration.js';
import type { CheckReport } from '../../runtime/check.js';
import type { RestoreAllSummary } from '../../runtime/restoration.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { RequestValidationError } from '../errors.js';
import { noQuery, supervisorIdParams, type SupervisorIdParams } from '../schemas.js';

/** The resume body is optional (`{}` or none resumes as before); its one field asks for seed step 3's fresh start. */
function resumeOptions(body: unknown): { startFreshIfMissing: boolean } {
  if (body === undefined || body === null || body === '') return { startFreshIfMissing: false };
  if (typeof body !== 'object' || Array.isArray(body)) throw new RequestValidationError(['body must be a JSON object like {"startFreshIfMissing": true}, or empty']);
  const problems: string[] = [];
  for (const key of Object.keys(body)) if (key !== 'startFreshIfMissing') problems.push(`body.${key} is not an accepted field`);
  const value = (body as { startFreshIfMissing?: unknown }).startFreshIfMissing;
  if (value !== undefined && typeof value !== 'boolean') problems.push('body.startFreshIfMissing must be true or false');
  if (problems.length > 0) throw new RequestValidationError(problems);
  return { startFreshIfMissing: value === true };
}

export function registerRestorationRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  // Claims the supervisor for this daemon (stopping its copy here if it runs), then runs the whole protocol; answers with
  // its RestorationInfo. 404 for an unknown id unless {"startFreshIfMissing": true}; 409 while another live daemon owns it.
  app.post<{ Params: SupervisorIdParams; Reply: RestorationInfo }>('/supervisors/:id/resume', { schema: { params: supervisorIdParams } }, async (request) =>
    runtime.resume(request.params.id, resumeOptions(request.body)),
  );

  // The restoration dry-run: what restoring every stored supervisor (or one) would do now, with this daemon's guards.
  app.get<{ Reply: CheckReport }>('/check', { schema: { querystring: noQuery } }, async () => runtime.check());
  app.get<{ Params: SupervisorIdParams; Reply: CheckReport }>('/supervisors/:id/check', { schema: { params: supervisorIdParams, querystring: noQuery } }, async (request) =>
    runtime.check({ supervisorIds: [request.params.id] }),
  );

  app.get<{ Reply: RestoreAllSummary }>('/restorations', async () => runtime.lastRestoreAll() ?? { total: 0, restored: 0, fromCheckpoint: 0, startedFresh: 0, failed: [], durationMs: 0, results: [] });

  // Every daemon sharing the database, which are live, and how many supervisors each owns.
  app.get('/daemons', async () => ({ self: runtime.daemonId, daemons: await runtime.daemons() }));
}
