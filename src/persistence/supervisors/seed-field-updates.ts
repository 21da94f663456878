// Targeted updates of single fields of a supervisor row (state, tasks, questions, restoration mark, phase) outside a full save.

import { sql } from 'kysely';
import { InvalidSupervisorDataError, SupervisorNotFoundError } from '../../domain/errors.js';
import type { PendingQuestion } from '../../domain/pending-question.js';
import type { RestorationSource } from '../../domain/restoration.js';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import { assertProgress, assertQuestion, assertState } from './assertions.js';
import type { DetailedStateUpdate, Executor, RestorationMark } from './records.js';

/** Update any of state, activity, progress and error message. Returns false when the supervisor does not exist. */
export async function updateSupervisorDetailedState(db: Executor, supervisorId: string, update: DetailedStateUpdate): Promise<boolean> {
  if (update.state !== undefined) assertState(supervisorId, update.state);
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  const values: Partial<Record<'state' | 'current_activity' | 'progress' | 'error_message', unknown>> = {};
  if (update.state !== undefined) values.state = update.state;
  if (update.currentActivity !== undefined) values.current_activity = update.currentActivity;
  if (update.progress !== undefined) values.progress = update.progress;
  if (update.errorMessage !== undefined) values.error_message = update.errorMessage;
  if (Object.keys(values).length === 0) throw new InvalidSupervisorDataError(supervisorId, 'update', 'names no field to change');
  return withDatabaseErrors('updateSupervisorDetailedState', supervisorId, async () => {
    const result = await db
      .updateTable('supervisor_states')
      .set({ ...(values as Record<string, never>), updated_at: sql`now()` })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}

/**
 * Record a spawned task: append its id to the row (once) and create its task row (once), in one statement.
 * Returns true when the id was new for this supervisor, false when it was already there (nothing changes).
 */
export async function addSupervisorSpawnedTask(db: Executor, supervisorId: string, taskId: string, description = ''): Promise<boolean> {
  if (typeof taskId !== 'string' || taskId.length === 0) throw new InvalidSupervisorDataError(supervisorId, 'taskId', 'must be a non-empty string');
  return withDatabaseErrors('addSupervisorSpawnedTask', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      WITH up AS (
        UPDATE supervisor_states SET spawned_task_ids = array_append(spawned_task_ids, ${taskId}::text), updated_at = now()
        WHERE id = ${supervisorId} AND NOT (${taskId}::text = ANY (spawned_task_ids))
        RETURNING id
      ), task AS (
        INSERT INTO supervisor_tasks (id, supervisor_id, description, status)
        SELECT ${taskId}, id, ${description}, 'running' FROM up
        ON CONFLICT (id) DO NOTHING
      )
      SELECT id FROM up`.execute(db);
    return result.rows.length > 0;
  });
}

/** Append a pending question unless one with its id is already pending. Returns true when it was added. */
export async function addSupervisorPendingQuestion(db: Executor, supervisorId: string, question: PendingQuestion): Promise<boolean> {
  assertQuestion(supervisorId, question);
  return withDatabaseErrors('addSupervisorPendingQuestion', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_states
      SET pending_questions = pending_questions || jsonb_build_array(${JSON.stringify(question)}::jsonb), updated_at = now()
      WHERE id = ${supervisorId} AND NOT pending_questions @> jsonb_build_array(jsonb_build_object('id', ${question.id}::text))
      RETURNING id`.execute(db);
    return result.rows.length > 0;
  });
}

/** Remove a pending question. Returns false when no question with that id was pending. */
export async function removeSupervisorPendingQuestion(db: Executor, supervisorId: string, questionId: string): Promise<boolean> {
  return withDatabaseErrors('removeSupervisorPendingQuestion', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_states
      SET pending_questions = (
            SELECT coalesce(jsonb_agg(q ORDER BY ord), '[]'::jsonb)
            FROM jsonb_array_elements(pending_questions) WITH ORDINALITY AS e(q, ord)
            WHERE q ->> 'id' IS DISTINCT FROM ${questionId}::text),
          updated_at = now()
      WHERE id = ${supervisorId} AND pending_questions @> jsonb_build_array(jsonb_build_object('id', ${questionId}::text))
      RETURNING id`.execute(db);
    return result.rows.length > 0;
  });
}

/** Count one more restoration and stamp its time and source. Throws SupervisorNotFoundError for an unknown id. */
export async function markSupervisorRestored(db: Executor, supervisorId: string, source: RestorationSource, at: Date = new Date()): Promise<RestorationMark> {
  return withDatabaseErrors('markSupervisorRestored', supervisorId, async () => {
    const row = await db
      .updateTable('supervisor_states')
      .set((eb) => ({
        restoration_count: eb('restoration_count', '+', 1),
        last_restored_at: at,
        restoration_source: source,
        updated_at: sql`now()`,
      }))
      .where('id', '=', supervisorId)
      .returning(['restoration_count', 'last_restored_at', 'restoration_source'])
      .executeTakeFirst();
    if (!row) throw new SupervisorNotFoundError(supervisorId);
    return { restorationCount: row.restoration_count, lastRestoredAt: toIso(row.last_restored_at) ?? at.toISOString(), restorationSource: source };
  });
}

/** Change the phase. Returns false when the supervisor does not exist. */
export async function updateSupervisorPhase(db: Executor, supervisorId: string, phase: string): Promise<boolean> {
  if (typeof phase !== 'string' || phase.length === 0) throw new InvalidSupervisorDataError(supervisorId, 'phase', 'must be a non-empty string');
  return withDatabaseErrors('updateSupervisorPhase', supervisorId, async () => {
    const result = await db.updateTable('supervisor_states').set({ phase, updated_at: sql`now()` }).where('id', '=', supervisorId).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}
