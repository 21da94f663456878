// Marks a supervisor interrupted from outside its actor, with a checkpoint, after a failed restore.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor } from './records.js';

/**
 * Mark a supervisor interrupted from outside its actor (a restore that failed): state, error message AND the stored
 * snapshot change together, with a checkpoint, so the row stays consistent and the next restore resumes it. A row
 * whose snapshot is not an object only gets the columns. Returns false for an unknown id.
 */
export async function markSupervisorInterrupted(db: Executor, supervisorId: string, reason: string): Promise<boolean> {
  return withDatabaseErrors('markSupervisorInterrupted', supervisorId, async () => {
    const patched = await sql<{ seq: string | number }>`
      WITH up AS (
        UPDATE supervisor_states AS s SET
          state = 'interrupted', error_message = ${reason}::text, step = s.step + 1, checkpoint_seq = s.checkpoint_seq + 1, updated_at = now(),
          snapshot = jsonb_set(
            jsonb_set(jsonb_set(s.snapshot, '{value}', '"interrupted"'), '{context,errorMessage}', to_jsonb(${reason}::text)),
            '{context,interruptedFrom}',
            CASE WHEN s.state = 'interrupted' THEN coalesce(s.snapshot #> '{context,interruptedFrom}', 'null'::jsonb) ELSE to_jsonb(s.state::text) END)
        WHERE s.id = ${supervisorId}::uuid AND jsonb_typeof(s.snapshot) = 'object' AND jsonb_typeof(s.snapshot -> 'context') = 'object'
        RETURNING s.id, s.checkpoint_seq, s.step, s.state, s.snapshot, s.machine_version
      ), checkpoint AS (
        INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
        SELECT id, checkpoint_seq, step, 'restore_failed', state, snapshot, coalesce(machine_version, 1) FROM up
        RETURNING seq
      )
      SELECT seq FROM checkpoint`
      .execute(db)
      // A row the database refuses to patch (its step at the bigint limit, say) still gets the columns below.
      .catch((error: unknown) => {
        if ((error as { code?: unknown }).code === '22003') return { rows: [] };
        throw error;
      });
    if (patched.rows.length > 0) return true;
    const result = await db
      .updateTable('supervisor_states')
      .set({ state: 'interrupted', error_message: reason, updated_at: sql`now()` })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}
