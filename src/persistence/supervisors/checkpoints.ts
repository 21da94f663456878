// Reads of a supervisor's checkpoints, newest first.

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
