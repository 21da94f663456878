// The database going away: under a running supervisor (its step fails, it is interrupted, nothing older is written
// over what was committed), and on purpose at shutdown (queued saves commit first, then the database closes).

import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import { supervisorMachine } from '../../src/machines/supervisor-machine.js';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { getSupervisorState, getSupervisorStateForRestoration } from '../../src/persistence/supervisor-repository.js';
import { RuntimeStoppedError, SaveFailedError } from '../../src/runtime/errors.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { checkpointReasons, countRows, expectStoredEqualsLive, openDatabaseHandle, recordingLogger } from './runtime-fixtures.js';
import { startTcpProxy } from './tcp-proxy.js';

for (const target of await databaseTargets()) {
  describe(`database lifecycle on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('when the database goes away, send rejects with SaveFailedError, the supervisor is interrupted with the error, and the stored row keeps the last committed step', async () => {
      const handle = await openDatabaseHandle(target, database());
      const logger = recordingLogger();
      const runtime = createRuntime({ database: handle, logger, heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 10 } });
      try {
        const supervisor = await runtime.spawn({ name: 'fragile' });
        await runtime.spawnTask(supervisor.id, { description: 'long job' });
        const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Continue?' });
        const committedStep = supervisor.step;
        const committedSnapshot = supervisorMachine.getPersistedSnapshot(supervisor.snapshot);
        expect(committedStep).toBe(4);

        await handle.db.destroy();

        const error = await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SaveFailedError);
        expect((error as SaveFailedError).cause).toBeInstanceOf(DatabaseUnavailableError);
        expect((error as Error).message).toMatch(new RegExp(`Supervisor ${supervisor.id}: SET_PHASE was not applied`));
        // Three attempts: two retries logged before giving up.
        expect(logger.entries.filter((entry) => entry.message === 'save point failed, retrying')).toHaveLength(2);

        // Interrupted at once, in memory, with the error; the phase change did not happen.
        expect(supervisor.state).toBe('interrupted');
        expect(supervisor.snapshot.context.errorMessage).toMatch(/^database unavailable: /);
        expect(supervisor.snapshot.context.phase).toBe('planning');
        expect(supervisor.actor.getSnapshot().value).toBe('interrupted');
        expect(runtime.registry.getSnapshot().context.supervisors[supervisor.id]).toMatchObject({ state: 'interrupted', degraded: true });

        // A later event cannot jump the interruption's save point, so it fails the same way.
        await expect(runtime.answerQuestion(supervisor.id, questionId, 'yes')).rejects.toBeInstanceOf(SaveFailedError);
        expect(supervisor.step).toBe(committedStep);
        expect(supervisor.snapshot.context.pendingQuestions.map((q) => q.id)).toEqual([questionId]);

        // What is stored is exactly the last committed step: nothing later, nothing half-written.
        const row = await getSupervisorState(db(), supervisor.id);
        expect(row).toMatchObject({ step: committedStep, checkpointSeq: committedStep, state: 'waiting_for_user', phase: 'planning', errorMessage: null });
        expect(row?.pendingQuestions.map((q) => q.id)).toEqual([questionId]);
        expect((await getSupervisorStateForRestoration(db(), supervisor.id))?.snapshot).toEqual(committedSnapshot);
        expect(await checkpointReasons(db(), supervisor.id)).toEqual(['created', 'started', 'task_spawned', 'question_asked']);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
        await handle.close().catch(() => undefined);
      }
    });

    // A network outage that ends needs a network: PGlite runs in this process.
    // A network cut needs a TCP connection: Postgres only (PGlite runs in-process).
    if (target.name === 'postgres') it('after an outage ends, the interruption is saved first, at the next step, then the supervisor resumes by itself and goes on', async () => {
      const proxy = await startTcpProxy(target.url ?? '');
      const handle = await openDatabase({ databaseUrl: proxy.url, schema: database().schema ?? undefined, poolSize: 2, onBackgroundError: () => undefined });
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 10 } });
      try {
        const supervisor = await runtime.spawn({ name: 'resilient' });
        const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go ahead?' });
        expect(supervisor.step).toBe(3);

        await proxy.cut();
        await expect(runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' })).rejects.toBeInstanceOf(SaveFailedError);
        expect(supervisor.state).toBe('interrupted');
        expect((await getSupervisorState(db(), supervisor.id))?.step).toBe(3);

        proxy.restore();
        // On its own once the database answers again: the interruption's save point, then a RESUME of its own, since
        // the database and not a person interrupted it.
        await vi.waitFor(async () => expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'waiting_for_user', step: 5, errorMessage: null }), {
          timeout: 10_000,
          interval: 50,
        });
        await vi.waitFor(() => expect(runtime.registry.getSnapshot().context.supervisors[supervisor.id]?.degraded).toBe(false));
        expect(supervisor.step).toBe(5);
        expect(supervisor.state).toBe('waiting_for_user');

        await runtime.answerQuestion(supervisor.id, questionId, 'yes');
        expect(supervisor.state).toBe('working');
        expect(await checkpointReasons(db(), supervisor.id)).toEqual(['created', 'started', 'question_asked', 'interrupted', 'resumed', 'question_answered']);
        await expectStoredEqualsLive(db(), supervisor);
      } finally {
        await runtime.shutdown();
        await proxy.close();
      }
    });

    // A stall needs a TCP connection too: the proxy holds every byte, as a frozen server would.
    if (target.name === 'postgres') it('a stalled database: a write fails within the statement timeout saying its outcome is unknown, and once the database answers the supervisor goes on where the stored row is', async () => {
      const proxy = await startTcpProxy(target.url ?? '');
      const statementTimeoutMs = 500;
      const handle = await openDatabase({ databaseUrl: proxy.url, schema: database().schema ?? undefined, poolSize: 2, statementTimeoutMs, onBackgroundError: () => undefined });
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0, saveRetry: { attempts: 5, baseDelayMs: 10 } });
      try {
        const supervisor = await runtime.spawn({ name: 'stalled' });
        expect(supervisor.step).toBe(2);
        proxy.stall();
        const started = Date.now();
        const error = await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'frozen' }).catch((caught: unknown) => caught);
        const waited = Date.now() - started;
        expect(error).toBeInstanceOf(SaveFailedError);
        expect((error as SaveFailedError).outcome).toBe('unknown');
        expect((error as Error).message).toMatch(/outcome of SET_PHASE is unknown/);
        // One timeout (statement timeout + the client's 2 s grace), not five attempts of it.
        expect(waited).toBeLessThan(statementTimeoutMs + 2_000 + 2_000);
        expect(supervisor.state).toBe('interrupted');
        // A read fails within the timeout too, and says so.
        const read = await getSupervisorState(handle.db, supervisor.id).catch((caught: unknown) => caught);
        expect(read).toBeInstanceOf(DatabaseUnavailableError);

        proxy.unstall();
        // The held statement reaches the server late: it may commit. Whatever committed, the supervisor ends running
        // again (the interruption saved at the next step or, if that step is taken, reloaded) and row and copy agree.
        await vi.waitFor(async () => expect(runtime.get(supervisor.id)?.state ?? (await getSupervisorState(db(), supervisor.id))?.state).toBe('idle'), { timeout: 15_000, interval: 100 });
        await vi.waitFor(async () => expect((await getSupervisorState(db(), supervisor.id))?.state).toBe('idle'), { timeout: 15_000, interval: 100 });
        const live = runtime.get(supervisor.id);
        expect(live).toBeDefined();
        await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'after-the-stall' });
        await expectStoredEqualsLive(db(), runtime.get(supervisor.id)!);
      } finally {
        proxy.unstall();
        await runtime.shutdown();
        await proxy.close();
      }
    });

    if (target.name === 'postgres') it("a DATABASE_URL with its own options (?options=-c …) keeps them, and keeps the runtime's schema and statement timeout", async () => {
      const url = new URL(target.url ?? '');
      url.searchParams.set('options', '-c lock_timeout=1234 -c application_name=from-the-url');
      const handle = await openDatabase({ databaseUrl: url.toString(), schema: database().schema ?? undefined, statementTimeoutMs: 4_321, onBackgroundError: () => undefined });
      try {
        const setting = async (name: string) => (await sql<{ value: string }>`SELECT current_setting(${name}) AS value`.execute(handle.db)).rows[0]?.value;
        expect(await setting('lock_timeout')).toBe('1234ms');
        expect(await setting('application_name')).toBe('from-the-url');
        expect(await setting('statement_timeout')).toBe('4321ms');
        expect(await setting('search_path')).toBe(database().schema);
        // The schema is really in use: the runtime's tables are found without naming it.
        expect((await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_states`.execute(handle.db)).rows[0]?.n).toBe('0');
        expect(handle.description).toContain(`(schema ${database().schema})`);
      } finally {
        await handle.close();
      }
    });

    if (target.name === 'postgres') it('turns JIT off on its connections (every statement touches a few rows by key), and a URL can turn it back on', async () => {
      const setting = async (handle: Database) => (await sql<{ value: string }>`SELECT current_setting('jit') AS value`.execute(handle.db)).rows[0]?.value;
      const plain = await openDatabase({ databaseUrl: target.url ?? '', schema: database().schema ?? undefined, onBackgroundError: () => undefined });
      const url = new URL(target.url ?? '');
      url.searchParams.set('options', '-c jit=on');
      const withJit = await openDatabase({ databaseUrl: url.toString(), schema: database().schema ?? undefined, onBackgroundError: () => undefined });
      try {
        expect(await setting(plain)).toBe('off');
        expect(await setting(withJit)).toBe('on');
      } finally {
        await plain.close();
        await withJit.close();
      }
    });

    it('shutdown commits every save that was sent before it, then closes the database', async () => {
      const handle = await openDatabaseHandle(target, database());
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0 });
      const supervisor = await runtime.spawn({ name: 'leaving' });
      const phases = Array.from({ length: 8 }, (_, i) => `phase-${i}`);
      const sends = phases.map((phase) => runtime.send(supervisor.id, { type: 'SET_PHASE', phase }));
      await runtime.shutdown();

      const results = await Promise.allSettled(sends);
      expect(results.map((result) => (result.status === 'rejected' ? String(result.reason) : 'committed'))).toEqual(phases.map(() => 'committed'));
      const row = await getSupervisorState(db(), supervisor.id);
      expect(row).toMatchObject({ step: 2 + phases.length, phase: 'phase-7' });
      // After the last save and before the close, the lease was released: the database was still open then.
      const membership = await db().selectFrom('supervisor_daemons').select(['stopped_at', 'lease_expires_at']).where('id', '=', runtime.daemonId).executeTakeFirst();
      expect(membership?.stopped_at).toBeInstanceOf(Date);
      expect(new Date(membership!.lease_expires_at).getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
      expect(await countRows(db(), 'supervisor_checkpoints', supervisor.id)).toBe(2 + phases.length);
      // The runtime closed its database, and accepts no more work.
      expect((await handle.health()).ok).toBe(false);
      await expect(runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'late' })).rejects.toBeInstanceOf(RuntimeStoppedError);
      await expect(runtime.spawn({ name: 'late' })).rejects.toBeInstanceOf(RuntimeStoppedError);
    });

    it('an event sent after shutdown began is refused, and shutdown still closes the database', async () => {
      const handle = await openDatabaseHandle(target, database());
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0 });
      const supervisor = await runtime.spawn({ name: 'leaving' });
      const stopping = runtime.shutdown();
      const late = await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'late' }).catch((e: unknown) => e);
      await stopping;
      expect(late).toBeInstanceOf(RuntimeStoppedError);
      expect((await getSupervisorState(db(), supervisor.id))?.step).toBe(2);
      expect((await handle.health()).ok).toBe(false);
    });
  });
}
