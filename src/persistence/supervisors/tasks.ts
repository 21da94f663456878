// Reads and direct outcome writes of the supervisor_tasks rows.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor, SpawnedTaskValidation, TaskRecord } from './records.js';
import { toTaskRecord } from './row-mapping.js';

/** Which of the given task ids exist for this supervisor, with their status; the rest are missing. */
export async function validateSpawnedTasks(db: Executor, supervisorId: string, taskIds: readonly string[]): Promise<SpawnedTaskValidation> {
  if (taskIds.length === 0) return { existing: [], missing: [] };
  const rows = await withDatabaseErrors('validateSpawnedTasks', supervisorId, () =>
    db.selectFrom('supervisor_tasks').selectAll().where('supervisor_id', '=', supervisorId).where('id', 'in', [...taskIds]).execute(),
  );
  const existing = rows.map(toTaskRecord);
  const found = new Set(existing.map((task) => task.id));
  return { existing, missing: taskIds.filter((id) => !found.has(id)) };
}

/** Every task row of one supervisor (the restoration reads them once, with the state row). */
export async function listSupervisorTasks(db: Executor, supervisorId: string): Promise<TaskRecord[]> {
  const rows = await withDatabaseErrors('listSupervisorTasks', supervisorId, () => db.selectFrom('supervisor_tasks').selectAll().where('supervisor_id', '=', supervisorId).execute());
  return rows.map(toTaskRecord);
}

export async function getTask(db: Executor, taskId: string): Promise<TaskRecord | null> {
  const row = await withDatabaseErrors('getTask', undefined, () => db.selectFrom('supervisor_tasks').selectAll().where('id', '=', taskId).executeTakeFirst());
  return row ? toTaskRecord(row) : null;
}

/** Record a task's outcome directly (a worker with database access); only a running task changes. Returns true when it did. */
export async function recordTaskOutcome(
  db: Executor,
  taskId: string,
  outcome: { status: 'completed' | 'failed'; result?: string | null; error?: string | null },
): Promise<boolean> {
  const result = await withDatabaseErrors('recordTaskOutcome', undefined, () =>
    db
      .updateTable('supervisor_tasks')
      .set({
        status: outcome.status,
        result: outcome.result ?? null,
        error: outcome.error ?? null,
        progress: outcome.status === 'completed' ? 100 : sql<number>`progress`,
        finished_at: sql<Date>`now()`,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', taskId)
      .where('status', 'in', ['pending', 'running'])
      .executeTakeFirst(),
  );
  return Number(result.numUpdatedRows) > 0;
}
