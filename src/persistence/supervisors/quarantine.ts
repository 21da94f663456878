// Copies a supervisor row, as stored, into supervisor_quarantine before a fresh start replaces it.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor } from './records.js';

/** Copy the whole row, as stored, into supervisor_quarantine before a fresh start replaces it. Returns false when there is no row. */
export async function quarantineSupervisorRow(db: Executor, supervisorId: string, reason: string): Promise<boolean> {
  const result = await withDatabaseErrors('quarantineSupervisorRow', supervisorId, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_quarantine (supervisor_id, row_data, reason)
      SELECT id, to_jsonb(s.*), ${reason} FROM supervisor_states s WHERE id = ${supervisorId}
      RETURNING supervisor_id AS id`.execute(db),
  );
  return result.rows.length > 0;
}
