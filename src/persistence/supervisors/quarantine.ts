// Copies a supervisor row, as stored, into supervisor_quarantine before a fresh start replaces it.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor } from './records.js';

/**
 * Before a fresh start replaces the row: copy it, as stored, with the snapshot of its current checkpoint, into
 * supervisor_quarantine, and close the open work of the life that ends — its pending questions are withdrawn and its
 * unfinished tasks failed, with `reason` — so no later restore takes them for work the fresh supervisor left open.
 * One statement, fenced: only while `fence.owner` owns the row at `fence.epoch`. Returns false when nothing was written
 * (no row, or the fence refused).
 */
export async function quarantineSupervisorRow(db: Executor, supervisorId: string, reason: string, fence: { owner: string; epoch: number }): Promise<boolean> {
  const result = await withDatabaseErrors('quarantineSupervisorRow', supervisorId, () =>
    sql<{ id: string }>`
      WITH owned AS (
        SELECT s.id, s.checkpoint_seq, to_jsonb(s.*) AS row_data FROM supervisor_states s
        WHERE s.id = ${supervisorId} AND s.owner = ${fence.owner} AND s.epoch = ${fence.epoch}
      ),
      questions AS (
        UPDATE supervisor_questions q SET withdrawn_at = now(), withdrawn_reason = ${reason}
        FROM owned WHERE q.supervisor_id = owned.id AND q.answered_at IS NULL AND q.withdrawn_at IS NULL
      ),
      tasks AS (
        UPDATE supervisor_tasks t SET status = 'failed', error = ${reason}, finished_at = now(), updated_at = now()
        FROM owned WHERE t.supervisor_id = owned.id AND t.status IN ('pending', 'running')
      )
      INSERT INTO supervisor_quarantine (supervisor_id, row_data, reason)
      SELECT owned.id, owned.row_data || jsonb_build_object('snapshot', c.snapshot), ${reason}
      FROM owned LEFT JOIN supervisor_checkpoints c ON c.supervisor_id = owned.id AND c.seq = owned.checkpoint_seq
      RETURNING supervisor_id AS id`.execute(db),
  );
  return result.rows.length > 0;
}
