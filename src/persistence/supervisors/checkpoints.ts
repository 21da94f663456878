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

/** The newest checkpoint with a sequence number below `seq` (pass Infinity for the newest of all); null when none. */
export async function getNewestCheckpointBefore(db: Executor, supervisorId: string, seq: number): Promise<CheckpointRecord | null> {
  const rows = await listCheckpoints(db, supervisorId, { limit: 1, ...(Number.isFinite(seq) ? { beforeSeq: seq } : {}) });
  return rows[0] ?? null;
}

/**
 * Retention: delete the checkpoints of the given supervisors older than their newest `keep` (the newest is the one the
 * row points to, so it always stays). Only supervisors this daemon owns are pruned (a restore elsewhere may be walking
 * the others' checkpoints). One statement for the whole batch; returns how many checkpoints went.
 */
export async function pruneCheckpoints(db: Executor, input: { supervisorIds: readonly string[]; keep: number; owner: string }): Promise<number> {
  if (input.supervisorIds.length === 0) return 0;
  const keep = Math.max(1, Math.floor(input.keep));
  const result = await withDatabaseErrors('pruneCheckpoints', undefined, () =>
    sql<{ n: string | number }>`/* sr:prune_checkpoints */
      WITH gone AS (
        DELETE FROM supervisor_checkpoints c
        USING supervisor_states s
        WHERE s.id = ANY (${[...input.supervisorIds]}::uuid[]) AND s.owner = ${input.owner}
          AND c.supervisor_id = s.id AND c.seq <= s.checkpoint_seq - ${keep}
        RETURNING 1
      )
      SELECT count(*) AS n FROM gone`.execute(db),
  );
  return Number(result.rows[0]?.n ?? 0);
}
