// GET / and GET /dashboard: the dashboard page (static HTML, no data in it: its requests carry the token).

import type { FastifyInstance } from 'fastify';
import { DASHBOARD_HTML } from '../dashboard-page.js';

export const DASHBOARD_PATHS = ['/', '/dashboard'];

export function registerDashboardRoutes(app: FastifyInstance): void {
  for (const path of DASHBOARD_PATHS) {
    app.get(path, async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        // The page runs only its own inline script and talks only to this daemon.
        .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        .send(DASHBOARD_HTML),
    );
  }
}
