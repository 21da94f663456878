// Forks under faults and at the edges: a creation whose reply is lost, a RESUME that cannot be saved, retries that
// must answer with what was stored, the driver told once, and lineage paging.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { getConversation, listSupervisorTasks } from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { NextSaveFault } from '../helpers/connection-faults.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`forks under faults on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const states = async () => Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM supervisor_states`.execute(database().db)).rows[0]?.n);

    it('a fork whose creation reply was lost is recognised on the save\'s own retry: one fork, its conversation whole', async () => {
      const plugin = new NextSaveFault();
      const runtime = createRuntime({ database: { ...database(), db: database().db.withPlugin(plugin) }, heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 5 } });
      try {
        const source = await runtime.spawn({ name: 'src' });
        await runtime.spawnTask(source.id, { description: 'build' });
        await runtime.askQuestion(source.id, { question: 'Q?', questionId: 'q1' });
        const before = await states();
        plugin.armed = true;
        const result = await runtime.fork(source.id, { start: false });
        expect(plugin.lost).toBe(1);
        expect(result.supervisor.state).toBe('waiting_for_user');
        expect(await states()).toBe(before + 1);
        expect(await getConversation(database().db, result.supervisor.id)).toHaveLength(result.supervisor.snapshot.context.conversationLength);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a fork whose outcome was unknown, retried with its id after the source moved on, answers with what it stored', async () => {
      const plugin = new NextSaveFault();
      const told: Array<{ sourceId: string; checkpointSeq: number; notice: boolean }> = [];
      const driver: AgentDriver = { name: 'rec', onForked: (_supervisor, fork) => void told.push({ sourceId: fork.sourceId, checkpointSeq: fork.checkpointSeq, notice: fork.contextMessage.startsWith('[fork]') }) };
      const runtime = createRuntime({ database: { ...database(), db: database().db.withPlugin(plugin) }, heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 5 }, drivers: [driver] });
      try {
        const source = await runtime.spawn({ name: 'src', driver: 'rec' });
        await runtime.spawnTask(source.id, { description: 'build' });
        const id = '6a0e6a38-2f7c-4b8e-9d1a-0c1f2e3d4b5a';
        plugin.armed = true;
        plugin.outageAfterSave = 1;
        await expect(runtime.fork(source.id, { id })).rejects.toMatchObject({ outcome: 'unknown' });
        await runtime.send(source.id, { type: 'SET_PHASE', phase: 'execution' });
        const retry = await runtime.fork(source.id, { id });
        const origin = (await runtime.lineage(id)).forkedFrom;
        expect(retry.tasks).toEqual(origin?.tasks);
        expect(retry.tasks.map((task) => task.to)).toEqual((await listSupervisorTasks(database().db, id)).map((row) => row.id));
        expect(retry.forkedFrom).toEqual({ supervisorId: source.id, checkpointSeq: origin?.checkpointSeq });
        // Its driver is told once, by the retry that took it up, with the stored origin and notice.
        await expect.poll(() => told).toEqual([{ sourceId: source.id, checkpointSeq: origin?.checkpointSeq, notice: true }]);
        // Nor does a spawn retried under that id answer with the fork.
        await expect(runtime.spawn({ id, name: 'src (fork)' })).rejects.toThrow(/already taken/);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('an unknown-outcome fork of A retried as a fork of B under the same id is refused as taken', async () => {
      const plugin = new NextSaveFault();
      const runtime = createRuntime({ database: { ...database(), db: database().db.withPlugin(plugin) }, heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 5 } });
      try {
        const a = await runtime.spawn({ name: 'A' });
        const b = await runtime.spawn({ name: 'B' });
        const id = '7b1e6a38-2f7c-4b8e-9d1a-0c1f2e3d4b5a';
        plugin.armed = true;
        plugin.outageAfterSave = 1;
        await expect(runtime.fork(a.id, { id })).rejects.toMatchObject({ outcome: 'unknown' });
        await expect(runtime.fork(b.id, { id })).rejects.toThrow(/already taken/);
        expect((await runtime.lineage(id)).forkedFrom?.sourceId).toBe(a.id);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a fork of an interrupted checkpoint whose RESUME cannot be saved is answered as made, and resumes by itself', async () => {
      // The creation commits and answers; the next statements (the RESUME's save and its retry) are refused.
      const plugin = new NextSaveFault();
      plugin.loseReply = false;
      const runtime = createRuntime({ database: { ...database(), db: database().db.withPlugin(plugin) }, heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 5 } });
      try {
        const source = await runtime.spawn({ name: 'paused' });
        await runtime.send(source.id, { type: 'INTERRUPT', reason: 'operator pause' });
        const before = await states();
        plugin.armed = true;
        plugin.outageAfterSave = 2;
        const { supervisor: fork } = await runtime.fork(source.id);
        expect(await states()).toBe(before + 1);
        await expect.poll(() => fork.state, { timeout: 20_000 }).toBe('idle');
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a fork of a checkpoint interrupted before START is resumed and started; its driver hears onForked once (started), not onStarted', async () => {
      const calls: string[] = [];
      const driver: AgentDriver = {
        name: 'rec',
        onStarted: (supervisor) => void calls.push(`started ${supervisor.id}`),
        onForked: (supervisor, fork) => void calls.push(`forked ${supervisor.id} ${supervisor.state()} started=${fork.started} ${fork.contextMessage.startsWith('[fork]')}`),
      };
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      try {
        const source = await runtime.spawn({ name: 'never started', start: false, driver: 'rec' });
        await runtime.send(source.id, { type: 'INTERRUPT', reason: 'hold' });
        const { supervisor: fork } = await runtime.fork(source.id);
        expect(fork.state).toBe('idle');
        await expect.poll(() => calls).toEqual([`forked ${fork.id} idle started=true true`]);
        // start: false: nothing is started and the driver hears nothing until it runs.
        const { supervisor: held } = await runtime.fork(source.id, { start: false });
        expect(held.state).toBe('interrupted');
        await runtime.send(fork.id, { type: 'SET_PHASE', phase: 'after' });
        expect(calls).toHaveLength(1);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a fork made with start: false stays held across restarts (interrupted, restored, its driver told nothing); the RESUME that begins it is told once', async () => {
      const calls: string[] = [];
      const driver: AgentDriver = {
        name: 'rec',
        onStarted: (supervisor) => void calls.push(`started ${supervisor.id}`),
        onRestored: (supervisor) => void calls.push(`restored ${supervisor.id}`),
        onResumed: (supervisor) => void calls.push(`resumed ${supervisor.id} ${supervisor.state()}`),
        onForked: (supervisor, fork) => void calls.push(`forked ${supervisor.id} started=${fork.started}`),
      };
      const first = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      const source = await first.spawn({ name: 'src' });
      await first.send(source.id, { type: 'INTERRUPT', reason: 'operator pause' });
      const { supervisor: held } = await first.fork(source.id, { start: false, driver: 'rec' });
      expect(held.state).toBe('interrupted');
      expect(held.snapshot.context.held).toBe(true);
      await first.shutdown({ closeDatabase: false });

      const second = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      try {
        const summary = await second.restoreAll();
        expect(summary.failed).toEqual([]);
        const info = summary.results.find((result) => result.supervisorId === held.id);
        expect(info).toMatchObject({ restoredState: 'interrupted', restorationCount: 1 });
        // The source, interrupted by its operator, was restored and resumed as before; the fork was not.
        expect(second.get(source.id)?.state).toBe('idle');
        expect(second.get(held.id)?.snapshot.context.held).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(calls).toEqual([]);

        await second.send(held.id, { type: 'RESUME' });
        expect(second.get(held.id)?.state).toBe('idle');
        expect(second.get(held.id)?.snapshot.context.held).toBe(false);
        await expect.poll(() => calls).toEqual([`resumed ${held.id} idle`]);
      } finally {
        await second.shutdown({ closeDatabase: false });
      }
      // Begun: the next restore treats it as any other, and its driver hears that restore.
      const third = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      try {
        expect((await third.restore(held.id, 'daemon_restart')).restoredState).toBe('idle');
        await expect.poll(() => calls).toEqual([`resumed ${held.id} idle`, `restored ${held.id}`]);
      } finally {
        await third.shutdown({ closeDatabase: false });
      }
    });

    it('a fork made with start: false of a checkpoint from before START stays initializing across a restart; its START is told once', async () => {
      const calls: string[] = [];
      const driver: AgentDriver = {
        name: 'rec',
        onStarted: (supervisor) => void calls.push(`started ${supervisor.id}`),
        onRestored: (supervisor) => void calls.push(`restored ${supervisor.id}`),
        onForked: (supervisor, fork) => void calls.push(`forked ${supervisor.id} started=${fork.started}`),
      };
      const first = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      const source = await first.spawn({ name: 'never started', start: false });
      const { supervisor: held } = await first.fork(source.id, { start: false, driver: 'rec' });
      expect(held.state).toBe('initializing');
      await first.shutdown({ closeDatabase: false });

      const second = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      try {
        const summary = await second.restoreAll();
        expect(summary).toMatchObject({ total: 2, restored: 2, failed: [] });
        expect(second.get(held.id)?.state).toBe('initializing');
        expect(second.get(source.id)?.state).toBe('initializing');
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(calls).toEqual([]);
        await second.send(held.id, { type: 'START' });
        expect(second.get(held.id)?.state).toBe('idle');
        await expect.poll(() => calls).toEqual([`started ${held.id}`]);
      } finally {
        await second.shutdown({ closeDatabase: false });
      }
    });

    it('a fork made to start whose checkpoint was held is not held itself: it runs, and its driver hears onForked once', async () => {
      const calls: string[] = [];
      const driver: AgentDriver = { name: 'rec', onForked: (supervisor, fork) => void calls.push(`forked ${supervisor.id} started=${fork.started}`) };
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0, drivers: [driver] });
      try {
        const source = await runtime.spawn({ name: 'never started', start: false });
        const { supervisor: fork } = await runtime.fork(source.id, { driver: 'rec' });
        expect(fork.state).toBe('idle');
        expect(fork.snapshot.context).not.toHaveProperty('held');
        await expect.poll(() => calls).toEqual([`forked ${fork.id} started=true`]);
        // A fork with no first step to hold back (its checkpoint runs) is not held either.
        await runtime.send(source.id, { type: 'START' });
        const { supervisor: running } = await runtime.fork(source.id, { start: false });
        expect(running.state).toBe('idle');
        expect(running.snapshot.context).not.toHaveProperty('held');
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('lineage keeps where a fork came from however many forks of it are listed', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const source = await runtime.spawn({ name: 'src' });
        const { supervisor: fork } = await runtime.fork(source.id);
        await runtime.fork(fork.id);
        await runtime.fork(fork.id);
        const lineage = await runtime.lineage(fork.id, { limit: 1 });
        expect(lineage.forks).toHaveLength(1);
        expect(lineage.forkedFrom?.sourceId).toBe(source.id);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
