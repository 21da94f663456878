// Issue 12 on a real Postgres that really restarts: a private server on a free port, stopped (fast and immediate)
// under a client driving writes through the HTTP API, and stopped for a few seconds under heartbeating supervisors.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql, type KyselyPlugin, type QueryId } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { migrateOrThrow } from '../../src/persistence/migrator.js';
import { getSupervisorState } from '../../src/persistence/supervisor-repository.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { uniqueSchemaName } from '../helpers/databases.js';
import { PRIVATE_POSTGRES_ENABLE_LINE, postgresBinDir, usePrivatePostgres, type StopMode } from '../helpers/postgres-server.js';
import { serverGate } from '../helpers/servers.js';
import { checkpointReasons, expectStoredEqualsLive } from '../runtime/runtime-fixtures.js';

const gate = serverGate('private Postgres (initdb)', postgresBinDir() !== null, PRIVATE_POSTGRES_ENABLE_LINE);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One write of a workflow, and how to tell from the tables whether it is in the database. */
interface Write {
  name: 'spawn' | 'ask' | 'answer' | 'spawn task' | 'complete task';
  url: string;
  payload: Record<string, unknown>;
  stored(db: Database['db']): Promise<boolean>;
}

interface Reply {
  write: Write['name'];
  supervisorId: string;
  status: number;
  body: { error?: string; message?: string; outcome?: unknown };
}

/** The five writes of one workflow, each with the caller's ids (its idempotency keys). */
function workflow(index: number): { supervisorId: string; writes: Write[] } {
  const id = randomUUID();
  const questionId = `q-${index}`;
  const taskId = `t-${index}-${id.slice(0, 8)}`;
  const question = (db: Database['db']) => db.selectFrom('supervisor_questions').selectAll().where('supervisor_id', '=', id).where('id', '=', questionId).executeTakeFirst();
  const task = (db: Database['db']) => db.selectFrom('supervisor_tasks').selectAll().where('id', '=', taskId).executeTakeFirst();
  return {
    supervisorId: id,
    writes: [
      { name: 'spawn', url: '/supervisors', payload: { id, name: `client-${index}`, driver: 'manual' }, stored: async (db) => (await getSupervisorState(db, id)) !== null },
      { name: 'ask', url: `/supervisors/${id}/questions`, payload: { questionId, question: 'Ship it?' }, stored: async (db) => (await question(db)) !== undefined },
      { name: 'answer', url: `/supervisors/${id}/questions/${questionId}/answer`, payload: { answer: 'yes' }, stored: async (db) => (await question(db))?.answer === 'yes' },
      { name: 'spawn task', url: `/supervisors/${id}/tasks`, payload: { taskId, description: 'build it' }, stored: async (db) => (await task(db)) !== undefined },
      { name: 'complete task', url: `/tasks/${taskId}/events`, payload: { type: 'completed', result: 'built' }, stored: async (db) => (await task(db))?.status === 'completed' },
    ],
  };
}

/** Retries a read until the database answers (it may be restarting), within a generous deadline. */
async function whenReadable<T>(read: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

if (gate.run) {
  describe('Postgres restarts and outages on a private server', () => {
    // What the test itself reads with: a pool of its own on the same schema, not the runtime's.
    let verifier: Database;
    let database: Database;
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
    const server = usePrivatePostgres(async (postgres) => {
      if (!postgres.running) await postgres.start();
    });

    /** Set by a test: runs (awaited) right after a save point statement returned from the server, i.e. committed. */
    let afterSavePoint: (() => Promise<void>) | null = null;

    async function open(options: { heartbeatIntervalMs: number; saveRetry?: { attempts: number; baseDelayMs: number } }): Promise<void> {
      const schema = uniqueSchemaName('fault');
      const ignore = () => undefined;
      database = await openDatabase({ databaseUrl: server().url, schema, poolSize: 6, onBackgroundError: ignore });
      await migrateOrThrow(database);
      verifier = await openDatabase({ databaseUrl: server().url, schema, poolSize: 2, onBackgroundError: ignore });
      // The save point is one autocommitted statement: when its result is back, it has committed.
      const savePoints = new Set<QueryId>();
      const plugin: KyselyPlugin = {
        transformQuery({ node, queryId }) {
          if (node.kind === 'RawNode' && node.sqlFragments.join('?').includes('INSERT INTO supervisor_states')) savePoints.add(queryId);
          return node;
        },
        async transformResult({ result, queryId }) {
          if (savePoints.delete(queryId) && afterSavePoint) {
            const hook = afterSavePoint;
            afterSavePoint = null;
            await hook();
          }
          return result;
        },
      };
      const observed: Database = { ...database, db: database.db.withPlugin(plugin) };
      runtime = createRuntime({ database: observed, heartbeatIntervalMs: options.heartbeatIntervalMs, ...(options.saveRetry ? { saveRetry: options.saveRetry } : {}) });
      await runtime.start();
      app = await createApiServer(runtime);
    }

    async function post(url: string, payload: Record<string, unknown>): Promise<{ status: number; body: Reply['body'] }> {
      const response = await app!.inject({ method: 'POST', url, payload });
      return { status: response.statusCode, body: response.json() as Reply['body'] };
    }

    it('a write whose save point committed just before Postgres stopped is answered 2xx from what committed, never 503, and its retry is applied once', async () => {
      await open({ heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 50 } });
      const { supervisorId, writes } = workflow(0);
      const answers: Array<{ write: string; status: number; readBack: unknown; state: unknown }> = [];
      for (const write of writes) {
        // The previous write's outage is behind the supervisor (interruption saved, resumed), so the next save point is this write's.
        await vi.waitFor(() => expect(['interrupted', 'initializing']).not.toContain(runtime!.get(supervisorId)?.state ?? 'not spawned'), { timeout: 15_000 });
        await vi.waitFor(() => expect(runtime!.get(supervisorId)?.degraded ?? false).toBe(false), { timeout: 15_000 });
        // Postgres goes away the moment this write's save point committed: before the read-back, before the reply.
        let stopped = false;
        afterSavePoint = async () => {
          await server().stop({ mode: 'fast' });
          stopped = true;
        };
        const first = await post(write.url, write.payload);
        expect(stopped, `${write.name} reached its save point`).toBe(true);
        // The reply is built from what this daemon committed, and says the read-back did not happen.
        const view = (first.body as { supervisor?: Record<string, unknown> }).supervisor ?? (first.body as Record<string, unknown>);
        answers.push({ write: write.name, status: first.status, readBack: view.readBack, state: first.status < 300 ? view.state : first.body });
        await server().start();
        expect(await whenReadable(() => write.stored(verifier.db)), `${write.name} is stored`).toBe(true);
        // The client retries anyway (it may not have trusted a partial reply): applied once, answered as a replay.
        const retried = await whenReadable(async () => {
          const reply = await post(write.url, write.payload);
          if (reply.status === 503) throw new Error(`${write.name} retry: ${JSON.stringify(reply.body)}`);
          return reply;
        });
        expect(retried.status, `${write.name} retry: ${JSON.stringify(retried.body)}`).toBe(200);
      }
      expect(answers).toEqual([
        // Created, then Postgres stopped before START: the creation is reported, interrupted, and it starts by itself.
        { write: 'spawn', status: 201, readBack: false, state: 'interrupted' },
        { write: 'ask', status: 201, readBack: false, state: 'waiting_for_user' },
        { write: 'answer', status: 200, readBack: false, state: 'working' },
        { write: 'spawn task', status: 201, readBack: false, state: 'waiting_for_tasks' },
        { write: 'complete task', status: 200, readBack: false, state: 'working' },
      ]);
      const reasons = await checkpointReasons(verifier.db, supervisorId);
      for (const reason of ['created', 'started', 'question_asked', 'question_answered', 'task_spawned', 'task_completed']) {
        expect(reasons.filter((seen) => seen === reason), `${reason} checkpoints: ${reasons.join(', ')}`).toHaveLength(1);
      }
      const supervisor = runtime!.get(supervisorId)!;
      await vi.waitFor(() => expect(supervisor.degraded).toBe(false), { timeout: 15_000 });
      await expectStoredEqualsLive(verifier.db, supervisor);
    });

    for (const mode of ['fast', 'immediate'] as const satisfies readonly StopMode[]) {
      it(`a client writing through a ${mode} restart: every 503 carries its outcome, none says "not written" for a write that is stored, and retries with the same ids apply each write once`, async () => {
        // Few, short retries, so the outage reaches the client as 503s instead of being waited out inside the runtime.
        await open({ heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 50 } });
        const replies: Reply[] = [];
        const problems: string[] = [];
        const finished: Array<{ supervisorId: string; index: number }> = [];
        let restarted = false;
        let next = 0;

        async function run(write: Write, supervisorId: string): Promise<boolean> {
          let unknownBefore = false;
          for (let attempt = 1; attempt <= 400; attempt++) {
            const { status, body } = await post(write.url, write.payload);
            replies.push({ write: write.name, supervisorId, status, body });
            if (status >= 200 && status < 300) return true;
            if (status !== 503) {
              problems.push(`${write.name} of ${supervisorId} answered ${status}: ${JSON.stringify(body)}`);
              return false;
            }
            if (body.outcome !== 'not_written' && body.outcome !== 'unknown') problems.push(`${write.name} of ${supervisorId}: a 503 without outcome: ${JSON.stringify(body)}`);
            if (body.outcome === 'unknown') unknownBefore = true;
            // "Not written" must be true: once the database answers, the write is not in it (unless an earlier
            // attempt of it was answered "unknown", which may have committed).
            if (body.outcome === 'not_written' && !unknownBefore && (await whenReadable(() => write.stored(verifier.db)))) {
              problems.push(`${write.name} of ${supervisorId} answered 503 not_written, but it is stored: ${body.message}`);
            }
            await sleep(50);
          }
          problems.push(`${write.name} of ${supervisorId} never succeeded`);
          return false;
        }

        // Four clients, each running workflows one after another, until each has finished one begun after the restart.
        const client = async () => {
          let afterRestart = false;
          while (!afterRestart) {
            afterRestart = restarted;
            const index = next++;
            const { supervisorId, writes } = workflow(index);
            for (const write of writes) if (!(await run(write, supervisorId))) return;
            finished.push({ supervisorId, index });
          }
        };
        const clients = Promise.all([client(), client(), client(), client()]);

        await vi.waitFor(() => expect(finished.length).toBeGreaterThanOrEqual(4), { timeout: 30_000, interval: 20 });
        await server().stop({ mode });
        // Down long enough that every client meets the outage, not only the writes in flight at the stop.
        await sleep(1_500);
        await server().start();
        restarted = true;
        await clients;

        expect(problems).toEqual([]);
        const outages = replies.filter((reply) => reply.status === 503);
        // The restart was seen by the client: otherwise this test proved nothing.
        expect(outages.length).toBeGreaterThan(0);
        process.stderr.write(
          `[${mode} restart] ${replies.length} replies, ${outages.length} × 503 (${outages.filter((reply) => reply.body.outcome === 'unknown').length} unknown), ${finished.length} workflows\n`,
        );

        // Every workflow the client saw through is stored whole, each write applied once.
        for (const { supervisorId } of finished) {
          const reasons = await checkpointReasons(verifier.db, supervisorId);
          for (const reason of ['created', 'started', 'question_asked', 'question_answered', 'task_spawned', 'task_completed']) {
            expect(reasons.filter((seen) => seen === reason), `${reason} checkpoints of ${supervisorId}: ${reasons.join(', ')}`).toHaveLength(1);
          }
          const questions = await verifier.db.selectFrom('supervisor_questions').select(['id', 'answer']).where('supervisor_id', '=', supervisorId).execute();
          expect(questions.map((question) => question.answer)).toEqual(['yes']);
          const tasks = await verifier.db.selectFrom('supervisor_tasks').select(['status', 'result']).where('supervisor_id', '=', supervisorId).execute();
          expect(tasks).toEqual([{ status: 'completed', result: 'built' }]);
          const supervisor = runtime!.get(supervisorId);
          expect(supervisor, `supervisor ${supervisorId} runs`).toBeDefined();
          await vi.waitFor(() => expect(supervisor!.degraded).toBe(false), { timeout: 15_000 });
          await expectStoredEqualsLive(verifier.db, supervisor!);
        }
        // No supervisor was made twice, and none is left behind that the client did not finish.
        const stored = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_states`.execute(verifier.db);
        expect(Number(stored.rows[0]?.n)).toBe(finished.length);
      });
    }

    for (const mode of ['fast', 'immediate'] as const satisfies readonly StopMode[]) {
      it(`Postgres stopped (${mode}) for 6 s under supervisors heartbeating every 1.5 s: each is interrupted, and runs again as before within 5 s of the database's return`, async () => {
        await open({ heartbeatIntervalMs: 1_500 });
        const idle = await runtime!.spawn({ name: 'idle' });
        await runtime!.send(idle.id, { type: 'SET_PHASE', phase: 'review' });
        const asking = await runtime!.spawn({ name: 'asking' });
        const { questionId } = await runtime!.askQuestion(asking.id, { question: 'Merge?' });
        const waiting = await runtime!.spawn({ name: 'waiting on a task' });
        const { taskId } = await runtime!.spawnTask(waiting.id, { description: 'long build' });
        const supervisors = [idle, asking, waiting];
        const before = supervisors.map((supervisor) => ({
          id: supervisor.id,
          state: supervisor.state,
          phase: supervisor.snapshot.context.phase,
          questions: supervisor.snapshot.context.pendingQuestions.map((question) => question.id),
          tasks: supervisor.snapshot.context.tasks.map((task) => task.id),
        }));
        expect(before.map((entry) => entry.state)).toEqual(['idle', 'waiting_for_user', 'waiting_for_tasks']);
        const now = () =>
          supervisors.map((supervisor) => {
            const running = runtime!.get(supervisor.id) ?? supervisor;
            const { context } = running.snapshot;
            return { id: running.id, state: running.state, phase: context.phase, questions: context.pendingQuestions.map((question) => question.id), tasks: context.tasks.map((task) => task.id) };
          });

        const stoppedAt = Date.now();
        await server().stop({ mode });
        // The heartbeats meet the outage: every supervisor is interrupted by it, in memory and in the registry.
        await vi.waitFor(() => expect(now().map((entry) => entry.state)).toEqual(['interrupted', 'interrupted', 'interrupted']), { timeout: 30_000, interval: 50 });
        for (const supervisor of supervisors) {
          expect(runtime!.registry.getSnapshot().context.supervisors[supervisor.id]).toMatchObject({ state: 'interrupted', degraded: true });
        }
        await sleep(Math.max(0, 6_000 - (Date.now() - stoppedAt)));
        await server().start();
        const back = Date.now();

        // By themselves: nobody sends anything. Generous deadline to wait, strict bound on what was measured.
        await vi.waitFor(
          () => {
            expect(now()).toEqual(before);
            for (const supervisor of supervisors) expect(runtime!.get(supervisor.id)?.degraded).toBe(false);
          },
          { timeout: 30_000, interval: 25 },
        );
        const resumedWithinMs = Date.now() - back;
        process.stderr.write(`[${mode} 6 s outage] running again ${resumedWithinMs} ms after Postgres was back\n`);
        expect(resumedWithinMs).toBeLessThan(5_000);

        for (const supervisor of supervisors) {
          const running = runtime!.get(supervisor.id)!;
          // The checkpoints say what happened: interrupted by the database (the error recorded), then resumed.
          const reasons = await checkpointReasons(verifier.db, supervisor.id);
          expect(reasons.slice(-2), reasons.join(', ')).toEqual(['interrupted', 'resumed']);
          const interruption = (await verifier.db.selectFrom('supervisor_checkpoints').select('snapshot').where('supervisor_id', '=', supervisor.id).where('reason', '=', 'interrupted').executeTakeFirstOrThrow()).snapshot as {
            context: { errorMessage: string | null };
          };
          expect(interruption.context.errorMessage).toMatch(/^database unavailable: /);
          // The row says what the running copy says (heartbeats keep landing, so not the whole snapshot).
          const { context } = running.snapshot;
          expect(await getSupervisorState(verifier.db, supervisor.id)).toMatchObject({
            state: running.state,
            phase: context.phase,
            errorMessage: null,
            pendingQuestions: context.pendingQuestions,
            spawnedTaskIds: context.tasks.map((task) => task.id),
            step: running.step,
          });
        }
        // They go on: the pending question takes its answer, the task its completion, the heartbeat is saved again.
        await runtime!.answerQuestion(asking.id, questionId, 'yes');
        await runtime!.reportTaskEvent(taskId, { type: 'completed', result: 'built' });
        expect(runtime!.get(asking.id)?.state).toBe('working');
        expect(runtime!.get(waiting.id)?.state).toBe('working');
        const heartbeatAfter = new Date();
        await vi.waitFor(async () => expect(Date.parse((await getSupervisorState(verifier.db, idle.id))?.lastHeartbeat ?? '') || 0).toBeGreaterThan(heartbeatAfter.getTime()), { timeout: 15_000 });
        expect(runtime!.stats().leases).toMatchObject({ joined: true });
      });
    }
  });
}
