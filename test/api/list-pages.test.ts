// GET /supervisors in pages: `limit`, `after` and `next`, and the CLI's status reading every page.

import { describe, expect, it } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import type { SupervisorListResponse } from '../../src/api/views.js';
import { createDaemonClient } from '../../src/cli/commands/http-client.js';
import { allSupervisors } from '../../src/cli/commands/status.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`GET /supervisors in pages on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('pages newest first with next until null, refuses a bad limit or cursor, and the CLI reads every page', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const app = await createApiServer(runtime);
      try {
        // Spawned together, so several share a creation time: the pages must still hold each one once.
        const spawned = await Promise.all(Array.from({ length: 5 }, (_, n) => runtime.spawn({ name: `paged ${n}` })));
        const pages: SupervisorListResponse[] = [];
        let after: string | null = null;
        do {
          const response: Awaited<ReturnType<typeof app.inject>> = await app.inject({ method: 'GET', url: `/supervisors?limit=2${after ? `&after=${after.toUpperCase()}` : ''}` });
          expect(response.statusCode).toBe(200);
          const page: SupervisorListResponse = response.json<SupervisorListResponse>();
          pages.push(page);
          after = page.next;
        } while (after && pages.length < 10);
        expect(pages.map((page) => page.supervisors.length)).toEqual([2, 2, 1]);
        expect(pages.at(-1)?.next).toBeNull();
        // Each page counts every page's supervisors.
        expect(pages.map((page) => page.total)).toEqual([5, 5, 5]);
        const listed = pages.flatMap((page) => page.supervisors.map((supervisor) => supervisor.id));
        expect(new Set(listed)).toEqual(new Set(spawned.map((supervisor) => supervisor.id)));
        expect(listed).toHaveLength(5);
        // A last page that is full says so too: no cursor to an empty page.
        const exact = (await app.inject({ method: 'GET', url: '/supervisors?limit=5' })).json<SupervisorListResponse>();
        expect([exact.supervisors.length, exact.next]).toEqual([5, null]);
        const whole = (await app.inject({ method: 'GET', url: '/supervisors' })).json<SupervisorListResponse>();
        expect(whole.supervisors.map((supervisor) => supervisor.id)).toEqual(listed);
        expect(whole.next).toBeNull();

        for (const query of ['limit=0', 'limit=abc', 'after=not-a-uuid', 'cursor=1']) {
          const refused = await app.inject({ method: 'GET', url: `/supervisors?${query}` });
          expect(refused.statusCode, query).toBe(400);
        }

        const url = await app.listen({ host: '127.0.0.1', port: 0 });
        const all = await allSupervisors(createDaemonClient({ url, token: undefined }), 2);
        expect(all.supervisors.map((supervisor) => supervisor.id)).toEqual(listed);
        // The questions command reads every page of those with pending questions.
        const asking = spawned.slice(0, 3);
        for (const supervisor of asking) await runtime.askQuestion(supervisor.id, { question: `Go, ${supervisor.id}?` });
        const pending = await allSupervisors(createDaemonClient({ url, token: undefined }), 2, { pendingQuestions: true });
        expect(new Set(pending.supervisors.map((supervisor) => supervisor.id))).toEqual(new Set(asking.map((supervisor) => supervisor.id)));
        expect(pending.supervisors).toHaveLength(3);
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
