// Copies a supervisor row, as stored, into supervisor_quarantine before a fresh start replaces it.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor } from './records.js';

/** Copy the whole row, as stored, with the snapshot of its current checkpoint, into supervisor_quarantine before a fresh start replaces it. Returns false when there is no row. */
export async function quarantineSupervisorRow(db: Executor, supervisorId: string, reason: string): Promise<boolean> {
  const result = await withDatabaseErrors('quarantineSupervisorRow', supervisorId, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_quarantine (supervisor_id, row_data, reason)
      SELECT s.id, to_jsonb(s.*) || jsonb_build_object('snapshot', c.snapshot), ${reason}
      FROM supervisor_states s LEFT JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq
      WHERE s.id = ${supervisorId}
      RETURNING supervisor_id AS id`.execute(db),
  );
  return result.rows.length > 0;
}
