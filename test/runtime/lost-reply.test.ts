// A save point whose commit succeeded but whose reply never arrived (the connection dropped in between): the retry is
// refused as stale, the runtime sees that the stored row is its own step, and carries on instead of wedging.

import { describe, expect, it } from 'vitest';
import { getSupervisorState, listCheckpoints } from '../../src/persistence/supervisor-repository.js';
import { SaveFailedError } from '../../src/runtime/errors.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { NextSaveFault } from '../helpers/connection-faults.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`a lost commit reply on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('is recognised as the supervisor\'s own committed step: no interruption, no duplicate checkpoint, later steps still save', async () => {
      const plugin = new NextSaveFault();
      const handle = { ...database(), db: database().db.withPlugin(plugin) };
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 5 } });
      try {
        const supervisor = await runtime.spawn({ name: 'lossy' });
        plugin.armed = true;
        await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' });
        expect(plugin.lost).toBe(1);
        expect(supervisor.state).toBe('idle');
        expect(supervisor.step).toBe(3);
        await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'review' });
        const row = await getSupervisorState(database().db, supervisor.id);
        expect(row).toMatchObject({ phase: 'review', step: 4, state: 'idle' });
        expect((await listCheckpoints(database().db, supervisor.id)).map((checkpoint) => checkpoint.reason)).toEqual(['phase_changed', 'phase_changed', 'started', 'created']);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('followed by an outage, the copy that fell behind reloads itself from the database instead of wedging', async () => {
      const plugin = new NextSaveFault();
      const handle = { ...database(), db: database().db.withPlugin(plugin) };
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 5 } });
      try {
        const supervisor = await runtime.spawn({ name: 'lossy-then-down' });
        plugin.armed = true;
        plugin.outageAfterSave = 2;
        // The save commits, its reply is lost, and both retries find the database down: the caller is told it failed.
        await expect(runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' })).rejects.toBeInstanceOf(SaveFailedError);
        expect(supervisor.state).toBe('interrupted');
        // The interruption's own save point is then refused as stale (the row holds the committed SET_PHASE): this
        // daemon wrote that row itself, so the copy takes the stored state back, phase change included. That is not a
        // restoration (nothing is counted or re-delivered), and not "manual": nobody asked for it.
        const deadline = Date.now() + 10_000;
        const reloaded = () => {
          const current = runtime.get(supervisor.id);
          return current !== undefined && current !== supervisor ? current : undefined;
        };
        while (Date.now() < deadline && !reloaded()) await new Promise((r) => setTimeout(r, 50));
        expect(reloaded()).toBeDefined();
        expect(reloaded()?.snapshot.context).toMatchObject({ phase: 'execution', restorationSource: null, restorationCount: 0 });
        expect(reloaded()?.state).toBe('idle');
        await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'review' });
        expect(await getSupervisorState(database().db, supervisor.id)).toMatchObject({ phase: 'review', state: 'idle' });
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
