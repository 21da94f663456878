// Checkpoint retention: a long-lived supervisor keeps its newest N checkpoints, pruned in the background, and the
// restoration's fallback to the newest valid checkpoint still works on what is kept.

import { sql, type KyselyPlugin, type RootOperationNode } from 'kysely';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, pruneCheckpoints } from '../../src/persistence/supervisor-repository.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

/** The relations a plan (EXPLAIN's JSON tree) reads with a scan of the whole table. */
function seqScans(plan: Record<string, unknown>): string[] {
  const own = plan['Node Type'] === 'Seq Scan' ? [String(plan['Relation Name'])] : [];
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return [...own, ...children.flatMap(seqScans)];
}

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

    it('a supervisor that started fresh keeps every checkpoint of its earlier life; its new life is pruned to N', async () => {
      const keep = 3;
      const first = createRuntime({ database: database(), heartbeatIntervalMs: 0, checkpointRetention: { keep: 1000, intervalMs: 60_000 } });
      const supervisor = await first.spawn({ name: 'unrecoverable' });
      for (let n = 1; n <= 6; n++) await first.send(supervisor.id, { type: 'SET_PHASE', phase: `old-${n}` });
      await first.shutdown({ closeDatabase: false });
      const earlier = (await listCheckpoints(db(), supervisor.id, { limit: 1000 })).map((checkpoint) => checkpoint.seq);
      expect(earlier).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
      // No stored state can be used: a machine version this build does not know, on the row and every checkpoint.
      await sql`UPDATE supervisor_states SET machine_version = 99 WHERE id = ${supervisor.id}`.execute(db());
      await sql`UPDATE supervisor_checkpoints SET machine_version = 99 WHERE supervisor_id = ${supervisor.id}`.execute(db());

      const second = createRuntime({ database: database(), heartbeatIntervalMs: 0, checkpointRetention: { keep, intervalMs: 60_000 } });
      try {
        const info = await second.restore(supervisor.id, 'manual');
        expect(info.recoveryAction).toBe('start_fresh');
        for (let n = 1; n <= 6; n++) await second.send(supervisor.id, { type: 'SET_PHASE', phase: `new-${n}` });
        const newest = (await listCheckpoints(db(), supervisor.id, { limit: 1 }))[0]?.seq ?? 0;
        expect(newest).toBeGreaterThan(8 + keep + 2);
        await second.pruneCheckpoints();
        const kept = (await listCheckpoints(db(), supervisor.id, { limit: 1000 })).map((checkpoint) => checkpoint.seq);
        expect(kept).toEqual([newest, newest - 1, newest - 2, ...earlier]);
        // A second round takes nothing more.
        expect(await second.pruneCheckpoints()).toBe(0);
      } finally {
        await second.shutdown({ closeDatabase: false });
      }
      const after = (await listCheckpoints(db(), supervisor.id, { limit: 1000 })).map((checkpoint) => checkpoint.seq);
      expect(after.slice(-earlier.length)).toEqual(earlier);
    });

    it('a round looks up each supervisor\'s old checkpoints by index, also on a big analyzed table with nothing to delete', { timeout: 120_000 }, async () => {
      const supervisors = 4_000;
      const perSupervisor = 30;
      await sql`
        INSERT INTO supervisor_states (id, name, state, checkpoint_seq, step, owner)
        SELECT md5('p' || n)::uuid, 'prune ' || n, 'working', ${perSupervisor}, ${perSupervisor}, 'this-daemon' FROM generate_series(1, ${supervisors}) AS n`.execute(db());
      await sql`
        INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
        SELECT md5('p' || n)::uuid, k, k, 'bench', 'working', '{}'::jsonb, 2
        FROM generate_series(1, ${supervisors}) AS n, generate_series(1, ${perSupervisor}) AS k`.execute(db());
      // Statistics as a busy server has them: this is when a join of the batch with the whole table looked cheap.
      await sql`ANALYZE supervisor_states`.execute(db());
      await sql`ANALYZE supervisor_checkpoints`.execute(db());
      const ids = (await sql<{ id: string }>`SELECT md5('p' || n)::uuid AS id FROM generate_series(1, 500) AS n`.execute(db())).rows.map((row) => row.id);

      const captured: RootOperationNode[] = [];
      const capture: KyselyPlugin = {
        transformQuery: (args) => {
          captured.push(args.node);
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const watched = db().withPlugin(capture);
      // Nothing to delete at keep = 30; at keep = 25 each of the 500 loses its 5 oldest, and nobody else loses any.
      expect(await pruneCheckpoints(watched, { supervisorIds: ids, keep: perSupervisor, owner: 'this-daemon' })).toBe(0);
      const [node] = captured;
      const compiled = watched.getExecutor().compileQuery(node!, { queryId: 'explain' });
      const result = await db().executeQuery({ ...compiled, sql: `EXPLAIN (FORMAT JSON) ${compiled.sql}` });
      const cell = (result.rows[0] as Record<string, unknown>)['QUERY PLAN'];
      const [entry] = (typeof cell === 'string' ? JSON.parse(cell) : cell) as Array<{ Plan: Record<string, unknown> }>;
      expect(seqScans(entry!.Plan).filter((relation) => relation !== 'supervisor_quarantine')).toEqual([]);

      expect(await pruneCheckpoints(db(), { supervisorIds: ids, keep: 25, owner: 'this-daemon' })).toBe(500 * 5);
      const counts = await sql<{ pruned: string; total: string }>`
        SELECT count(*) FILTER (WHERE seq <= 5) AS pruned, count(*) AS total FROM supervisor_checkpoints`.execute(db());
      const row = counts.rows[0];
      expect({ pruned: Number(row?.pruned), total: Number(row?.total) }).toEqual({ pruned: (supervisors - 500) * 5, total: supervisors * perSupervisor - 500 * 5 });
    });
  });
}
