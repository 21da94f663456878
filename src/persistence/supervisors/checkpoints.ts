// Reads of a supervisor's checkpoints, newest first.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { CheckpointRecord, Executor } from './records.js';
import { toCheckpoint } from './row-mapping.js';

/** Checkpoints, newest first. */
export async function listCheckpoints(db: Executor, supervisorId: string, options: { limit?: number; beforeSeq?: number } = {}): Promise<CheckpointRecord[]> {
  const rows = await withDatabaseErrors('listCheckpoints', supervisorId, () => {
    let query = db.selectFrom('supervisor_checkpoints').selectAll().where('supervisor_id', '=', supervisorId);
    if (options.beforeSeq !== undefined) query = query.where('seq', '<', options.beforeSeq);
    return query.orderBy('seq', 'desc').limit(options.limit ?? 100).execute();
  });
  return rows.map(toCheckpoint);
}

/** One checkpoint by its sequence number; null when it is not stored (never written, or pruned). */
export async function getCheckpoint(db: Executor, supervisorId: string, seq: number): Promise<CheckpointRecord | null> {
  const row = await withDatabaseErrors('getCheckpoint', supervisorId, () =>
    db.selectFrom('supervisor_checkpoints').selectAll().where('supervisor_id', '=', supervisorId).where('seq', '=', seq).executeTakeFirst(),
  );
  return row ? toCheckpoint(row) : null;
}

/** The newest checkpoint with a sequence number below `seq` (pass Infinity for the newest of all); null when none. */
export async function getNewestCheckpointBefore(db: Executor, supervisorId: string, seq: number): Promise<CheckpointRecord | null> {
  const rows = await listCheckpoints(db, supervisorId, { limit: 1, ...(Number.isFinite(seq) ? { beforeSeq: seq } : {}) });
  return rows[0] ?? null;
}

/**
 * Retention: delete the checkpoints of the given supervisors older than their newest `keep` (the newest is the one the
 * row points to, so it always stays). Only supervisors this daemon owns are pruned (a restore elsewhere may be walking
 * the others' checkpoints). A supervisor that started fresh because no stored state could be used keeps the whole
 * history of its earlier life (every checkpoint up to the one its quarantined row pointed to), for whoever inspects or
 * repairs it. One statement for the whole batch; returns how many checkpoints went.
 *
 * Each supervisor's old checkpoints are found by an index range scan of its own (a LATERAL lookup per id) and deleted
 * by row address: a join of the batch with the whole table may be planned as a hash join over every checkpoint row
 * once statistics exist (96 ms per round with 300,000 narrow rows and nothing to delete, against 5 ms).
 */
export async function pruneCheckpoints(db: Executor, input: { supervisorIds: readonly string[]; keep: number; owner: string }): Promise<number> {
  if (input.supervisorIds.length === 0) return 0;
  const keep = Math.max(1, Math.floor(input.keep));
  const result = await withDatabaseErrors('pruneCheckpoints', undefined, () =>
    sql<{ n: string | number }>`/* sr:prune_checkpoints */
      WITH target AS MATERIALIZED (
        SELECT s.id, s.checkpoint_seq - ${keep} AS last_gone,
          coalesce((SELECT max((q.row_data ->> 'checkpoint_seq')::bigint) FROM supervisor_quarantine q WHERE q.supervisor_id = s.id), 0) AS pinned_through
        FROM unnest(${[...input.supervisorIds]}::uuid[]) AS w(id)
        CROSS JOIN LATERAL (SELECT s.id, s.checkpoint_seq FROM supervisor_states s WHERE s.id = w.id AND s.owner = ${input.owner} OFFSET 0) s
      ), gone AS (
        DELETE FROM supervisor_checkpoints c
        WHERE c.ctid = ANY (ARRAY(
          SELECT old.ctid FROM target t
          CROSS JOIN LATERAL (
            SELECT k.ctid FROM supervisor_checkpoints k
            WHERE k.supervisor_id = t.id AND k.seq <= t.last_gone AND k.seq > t.pinned_through OFFSET 0
          ) old
        ))
        RETURNING 1
      )
      SELECT count(*) AS n FROM gone`.execute(db),
  );
  return Number(result.rows[0]?.n ?? 0);
}
