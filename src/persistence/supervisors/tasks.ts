// Reads and direct outcome writes of the supervisor_tasks rows.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor, SpawnedTaskValidation, TaskRecord } from './records.js';
import { wantedIds } from './wanted-ids.js';
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

/**
 * The task rows a restoration needs, however many tasks the supervisor ran: the open ones (pending or running) and
 * those its row lists, plus any named in `ids`.
 */
export async function listOpenSupervisorTasks(db: Executor, supervisorId: string, ids: readonly string[] = []): Promise<TaskRecord[]> {
  const rows = await withDatabaseErrors('listOpenSupervisorTasks', supervisorId, () =>
    db
      .selectFrom('supervisor_tasks')
      .selectAll()
      .where('supervisor_id', '=', supervisorId)
      .where((eb) =>
        eb.or([
          eb('status', 'in', ['pending', 'running']),
          eb('id', '=', sql<string>`ANY (SELECT unnest(spawned_task_ids) FROM supervisor_states WHERE id = ${supervisorId})`),
          ...(ids.length > 0 ? [eb('id', 'in', [...ids])] : []),
        ]),
      )
      .execute(),
  );
  return rows.map(toTaskRecord);
}

/** Every task row of one supervisor, running and finished. */
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

/** listOpenSupervisorTasks for many supervisors in one query (restore-all prefetches a whole claimed batch). */
export async function listOpenTasksOfSupervisors(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, TaskRecord[]>> {
  const byId = new Map<string, TaskRecord[]>(supervisorIds.map((id) => [id, []]));
  if (supervisorIds.length === 0) return byId;
  const rows = await withDatabaseErrors('listOpenTasksOfSupervisors', supervisorIds.length === 1 ? supervisorIds[0] : undefined, () =>
    db
      .selectFrom(wantedIds(supervisorIds))
      .innerJoinLateral(
        (eb) =>
          eb
            .selectFrom('supervisor_tasks as t')
            .selectAll('t')
            .whereRef('t.supervisor_id', '=', 'wanted.id')
            .where((inner) =>
              inner.or([
                inner('t.status', 'in', ['pending', 'running']),
                inner.exists(inner.selectFrom('supervisor_states as s').select('s.id').whereRef('s.id', '=', 't.supervisor_id').where(sql<boolean>`t.id = ANY (s.spawned_task_ids)`)),
              ]),
            )
            .offset(0)
            .as('open'),
        (join) => join.onTrue(),
      )
      .selectAll('open')
      .execute(),
  );
  for (const row of rows) byId.get(row.supervisor_id)?.push(toTaskRecord(row));
  return byId;
}
