// Bearer-token check for every request but the health probe, compared in constant time.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ForbiddenHostError, UnauthorizedError } from './errors.js';
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

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The host name of a Host header (`127.0.0.1:7077` → `127.0.0.1`, `[::1]:7077` → `[::1]`), lower-cased. */
export function hostName(header: string | undefined): string {
  const value = (header ?? '').trim().toLowerCase();
  if (value.startsWith('[')) return value.slice(0, value.indexOf(']') + 1);
  return value.split(':')[0] ?? '';
}

/**
 * Without a token, a daemon on a loopback address answers only requests addressed to this machine by name: a web
 * page elsewhere cannot reach it through DNS rebinding (its requests carry the attacker's host name).
 */
export function requireLoopbackHost(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const name = hostName(request.headers.host);
    if (!LOOPBACK_NAMES.has(name)) throw new ForbiddenHostError(request.headers.host ?? '');
  });
}
