// Issue 12, item 4, on a real Postgres that really freezes: a private server whose postmaster and backends are
// SIGSTOPped under a client writing through the HTTP API, then SIGCONTed.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { migrateOrThrow } from '../../src/persistence/migrator.js';
import { getSupervisorState } from '../../src/persistence/supervisor-repository.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { uniqueSchemaName } from '../helpers/databases.js';
import { PRIVATE_POSTGRES_ENABLE_LINE, postgresBinDir, usePrivatePostgres } from '../helpers/postgres-server.js';
import { serverGate } from '../helpers/servers.js';
import { checkpointReasons, expectStoredEqualsLive } from '../runtime/runtime-fixtures.js';

const gate = serverGate('private Postgres (initdb)', postgresBinDir() !== null, PRIVATE_POSTGRES_ENABLE_LINE);

/** SUPERVISOR_RUNTIME_STATEMENT_TIMEOUT_MS for these tests, and the grace the client adds for a server that never answers. */
const STATEMENT_TIMEOUT_MS = 1_500;
const CLIENT_GRACE_MS = 2_000;
/** A loaded two-core machine answers late; the bound is one timeout, not several attempts of it. */
const MARGIN_MS = 2_000;

interface Timed {
  what: string;
  status: number;
  body: { error?: string; message?: string; outcome?: unknown };
  ms: number;
}

if (gate.run) {
  describe('a frozen Postgres on a private server', () => {
    let verifier: Database;
    let runtime: SupervisorRuntime | undefined;
    let app: FastifyInstance | undefined;

    afterEach(async () => {
      await app?.close();
      await runtime?.shutdown();
      await verifier?.close();
      app = undefined;
      runtime = undefined;
    });
    // Registered after the file's own clean-up, so it runs first (after-hooks run last-registered first): the server
    // is thawed or started again before the runtime shuts down on it.
    const server = usePrivatePostgres((postgres) => {
      if (postgres.frozen) postgres.thaw();
    });

    let beforeSavePoint: (() => void) | null = null;

    async function open(): Promise<void> {
      const schema = uniqueSchemaName('frozen');
      const ignore = () => undefined;
      const database = await openDatabase({ databaseUrl: server().url, schema, statementTimeoutMs: STATEMENT_TIMEOUT_MS, onBackgroundError: ignore });
      await migrateOrThrow(database);
      verifier = await openDatabase({ databaseUrl: server().url, schema, poolSize: 2, onBackgroundError: ignore });
      // A test may freeze the server the moment a save point statement is about to be sent.
      const plugin: KyselyPlugin = {
        transformQuery({ node }) {
          if (beforeSavePoint && node.kind === 'RawNode' && node.sqlFragments.join('?').includes('INSERT INTO supervisor_states')) {
            const hook = beforeSavePoint;
            beforeSavePoint = null;
            hook();
          }
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      runtime = createRuntime({ database: { ...database, db: database.db.withPlugin(plugin) }, heartbeatIntervalMs: 0 });
      await runtime.start();
      app = await createApiServer(runtime);
    }

    async function timedPost(what: string, url: string, payload: Record<string, unknown>): Promise<Timed> {
      const started = Date.now();
      const response = await app!.inject({ method: 'POST', url, payload });
      return { what, status: response.statusCode, body: response.json() as Timed['body'], ms: Date.now() - started };
    }

    it('writes to a frozen Postgres answer 503 within the statement timeout (outcome unknown once a statement reached it); after the thaw the supervisors go on and retries with the same ids apply once', async () => {
      await open();
      const ids = Array.from({ length: 5 }, () => randomUUID());
      for (const id of ids) expect((await timedPost('spawn', '/supervisors', { id, name: `before-${id.slice(0, 4)}`, driver: 'manual' })).status).toBe(201);
      const lateId = randomUUID();
      const [a, b, c, d, e] = ids as [string, string, string, string, string];
      const row = (id: string) => getSupervisorState(verifier.db, id);
      const writes: Array<{ what: string; url: string; payload: Record<string, unknown>; stored: () => Promise<boolean> }> = [
        ...[a, b, c].map((id) => ({ what: `set phase of ${id.slice(0, 4)}`, url: `/supervisors/${id}/events`, payload: { type: 'SET_PHASE', phase: 'frozen' }, stored: async () => (await row(id))?.phase === 'frozen' })),
        {
          what: 'ask',
          url: `/supervisors/${d}/questions`,
          payload: { questionId: 'q-frozen', question: 'Still there?' },
          stored: async () => (await verifier.db.selectFrom('supervisor_questions').select('id').where('supervisor_id', '=', d).execute()).length > 0,
        },
        {
          what: 'spawn task',
          url: `/supervisors/${e}/tasks`,
          payload: { taskId: 'task-frozen', description: 'wait it out' },
          stored: async () => (await verifier.db.selectFrom('supervisor_tasks').select('id').where('id', '=', 'task-frozen').execute()).length > 0,
        },
        { what: 'spawn', url: '/supervisors', payload: { id: lateId, name: 'spawned-while-frozen', driver: 'manual' }, stored: async () => (await row(lateId)) !== null },
      ];

      server().freeze();
      // All at once, as clients would: more than the pool holds idle, so some need a new connection to the frozen server.
      const replies = await Promise.all(writes.map(({ what, url, payload }) => timedPost(what, url, payload)));
      server().thaw();

      process.stderr.write(`[frozen] ${replies.map((reply) => `${reply.what}: ${reply.status} ${String(reply.body.outcome)} in ${reply.ms} ms`).join('; ')}\n`);
      for (const reply of replies) {
        expect({ what: reply.what, status: reply.status, error: reply.body.error }).toEqual({ what: reply.what, status: 503, error: expect.stringMatching(/^(SaveFailedError|DatabaseUnavailableError)$/) });
        // "unknown" when the statement reached the server; "not_written" only when it never did (no connection).
        expect(['unknown', 'not_written']).toContain(reply.body.outcome);
        expect(reply.ms, `${reply.what} answered within one statement timeout`).toBeLessThan(STATEMENT_TIMEOUT_MS + CLIENT_GRACE_MS + MARGIN_MS);
      }
      expect(replies.filter((reply) => reply.body.outcome === 'unknown').length).toBeGreaterThan(0);

      // After the thaw, by themselves: the held statements may have committed late; whatever did, each supervisor
      // runs again, not interrupted.
      for (const id of ids) {
        await vi.waitFor(
          () => {
            const running = runtime!.get(id);
            expect(running?.degraded).toBe(false);
            expect(['interrupted', 'initializing']).not.toContain(running?.state);
          },
          { timeout: 30_000, interval: 50 },
        );
      }
      // What was answered "not written" is not in the database, even after the frozen server ran what it held.
      for (const [index, write] of writes.entries()) {
        if (replies[index]!.body.outcome === 'not_written') expect(await write.stored(), `${write.what} answered not_written`).toBe(false);
      }
      // The client retries every write, with the same ids, until it is answered.
      for (const { what, url, payload } of writes) {
        let reply = await timedPost(what, url, payload);
        for (let attempt = 0; reply.status === 503 && attempt < 100; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          reply = await timedPost(what, url, payload);
        }
        // SET_PHASE carries no id: a retry of one that committed late is refused as a no-op, which says it is applied.
        const appliedAlready = reply.status === 409 && /phase is already frozen/.test(reply.body.message ?? '');
        expect(appliedAlready || [200, 201].includes(reply.status), `${what} retried: ${reply.status} ${JSON.stringify(reply.body)}`).toBe(true);
      }

      // Applied once each, and the supervisor spawned during the freeze runs here like the others.
      for (const id of [a, b, c]) expect((await checkpointReasons(verifier.db, id)).filter((reason) => reason === 'phase_changed')).toHaveLength(1);
      expect((await checkpointReasons(verifier.db, d)).filter((reason) => reason === 'question_asked')).toHaveLength(1);
      expect((await checkpointReasons(verifier.db, e)).filter((reason) => reason === 'task_spawned')).toHaveLength(1);
      expect((await checkpointReasons(verifier.db, lateId)).filter((reason) => reason === 'created' || reason === 'started')).toEqual(['created', 'started']);
      for (const id of [...ids, lateId]) {
        const running = runtime!.get(id);
        expect(running, `supervisor ${id} runs`).toBeDefined();
        await expectStoredEqualsLive(verifier.db, running!);
      }
      // And they go on.
      expect((await timedPost('answer', `/supervisors/${d}/questions/q-frozen/answer`, { answer: 'yes' })).status).toBe(200);
      expect((await timedPost('phase', `/supervisors/${lateId}/events`, { type: 'SET_PHASE', phase: 'thawed' })).status).toBe(200);
    });

    it('a spawn whose creation reached a frozen Postgres answers 503 outcome unknown; it committed when the server woke, and the retry with the same id answers with the supervisor running and started, created once', async () => {
      await open();
      const id = randomUUID();
      beforeSavePoint = () => server().freeze();
      const first = await timedPost('spawn', '/supervisors', { id, name: 'created in the dark', driver: 'manual' });
      expect(server().frozen).toBe(true);
      server().thaw();
      expect({ status: first.status, outcome: first.body.outcome }).toEqual({ status: 503, outcome: 'unknown' });
      expect(first.ms).toBeLessThan(STATEMENT_TIMEOUT_MS + CLIENT_GRACE_MS + MARGIN_MS);
      // The server ran the statement it held once it woke: the creation is stored, owned by this daemon.
      await vi.waitFor(async () => expect(await getSupervisorState(verifier.db, id)).toMatchObject({ state: 'initializing', owner: runtime!.daemonId }), { timeout: 15_000 });

      const retried = await timedPost('spawn', '/supervisors', { id, name: 'created in the dark', driver: 'manual' });
      expect([200, 201], JSON.stringify(retried.body)).toContain(retried.status);
      expect(retried.body).toMatchObject({ id, state: 'idle', live: true });
      const running = runtime!.get(id);
      expect(running?.state).toBe('idle');
      expect(await checkpointReasons(verifier.db, id)).toEqual(['created', 'started']);
      await expectStoredEqualsLive(verifier.db, running!);
      // And it takes work like any other.
      expect((await timedPost('ask', `/supervisors/${id}/questions`, { questionId: 'q-1', question: 'Awake?' })).status).toBe(201);
    });
  });
}
