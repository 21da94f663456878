// Checkpoint retention: a long-lived supervisor keeps its newest N checkpoints, pruned in the background, and the
// restoration's fallback to the newest valid checkpoint still works on what is kept.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { listCheckpoints } from '../../src/persistence/supervisor-repository.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`checkpoint retention on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('keeps the newest N checkpoints of each supervisor, leaves other daemons\' supervisors alone, and a corrupt newest snapshot still restores from the newest kept one', async () => {
      const keep = 5;
      const first = createRuntime({ database: database(), heartbeatIntervalMs: 0, checkpointRetention: { keep, intervalMs: 60_000 } });
      const supervisor = await first.spawn({ name: 'long-lived' });
      for (let n = 1; n <= 20; n++) await first.send(supervisor.id, { type: 'SET_PHASE', phase: `phase-${n}` });
      // A supervisor another daemon owns is never pruned by this one.
      const other = await first.spawn({ name: 'elsewhere' });
      for (let n = 1; n <= 8; n++) await first.send(other.id, { type: 'SET_PHASE', phase: `p-${n}` });
      await sql`UPDATE supervisor_states SET owner = 'another-daemon' WHERE id = ${other.id}`.execute(db());
      const before = (await listCheckpoints(db(), supervisor.id, { limit: 1000 })).length;
      expect(before).toBe(22); // created, started, 20 phase changes

      const deleted = await first.pruneCheckpoints();
      const kept = await listCheckpoints(db(), supervisor.id, { limit: 1000 });
      expect(kept.map((checkpoint) => checkpoint.seq)).toEqual([22, 21, 20, 19, 18]);
      expect(deleted).toBe(before - keep);
      expect((await listCheckpoints(db(), other.id, { limit: 1000 })).length).toBe(10);
      expect(first.stats().checkpoints).toMatchObject({ deleted: before - keep });
      // Saves carry on after pruning, and the next round trims again to N.
      await first.send(supervisor.id, { type: 'SET_PHASE', phase: 'phase-21' });
      await first.pruneCheckpoints();
      expect((await listCheckpoints(db(), supervisor.id, { limit: 1000 })).map((checkpoint) => checkpoint.seq)).toEqual([23, 22, 21, 20, 19]);
      await sql`UPDATE supervisor_states SET owner = ${first.daemonId} WHERE id = ${other.id}`.execute(db());
      await first.shutdown({ closeDatabase: false });

      // The newest snapshot (stored once, in the checkpoint the row points to) is corrupted: the newest kept one before it is used.
      await sql`UPDATE supervisor_checkpoints c SET snapshot = '"garbage"'::jsonb FROM supervisor_states s
        WHERE s.id = c.supervisor_id AND c.seq = s.checkpoint_seq AND s.id = ${supervisor.id}`.execute(db());
      const second = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const info = await second.restore(supervisor.id, 'manual');
        expect(info.recoveryAction).toBe('restore_from_checkpoint');
        expect(info.checkpointSeq).toBe(22);
        expect(second.get(supervisor.id)?.snapshot.context.phase).toBe('phase-20');
      } finally {
        await second.shutdown({ closeDatabase: false });
      }
    });
  });
}
