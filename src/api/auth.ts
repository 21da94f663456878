// Bearer-token check for every request but the health probe, compared in constant time.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from './errors.js';
import { DASHBOARD_PATHS } from './routes/dashboard.js';
import { HEALTH_PATH } from './routes/health.js';

// Hashing both sides first gives equal-length buffers, so neither the content nor the length of the token leaks by timing.
const digest = (value: string) => createHash('sha256').update(value).digest();

export function requireBearerToken(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  app.addHook('onRequest', async (request) => {
    // The health probe, and the dashboard page itself (static HTML with no data; its fetches carry the token).
    if ((request.method === 'GET' || request.method === 'HEAD') && (request.routeOptions.url === HEALTH_PATH || DASHBOARD_PATHS.includes(request.routeOptions.url ?? ''))) return;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) throw new UnauthorizedError();
  });
}
