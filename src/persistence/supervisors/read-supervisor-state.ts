// Reads of supervisor rows: one supervisor, lists, pending questions, and the raw state the restoration protocol validates.

import { sql } from 'kysely';
import { InvalidSnapshotError } from '../../domain/errors.js';
import type { SupervisorRestorationContext } from '../../domain/restoration.js';
import { withDatabaseErrors } from '../database-errors.js';
import { parsePendingQuestions, toIso } from '../row-parsers.js';
import type { Executor, ListSupervisorsOptions, PendingQuestionsSummary, SupervisorDetailedState } from './records.js';
import { wantedIds } from './wanted-ids.js';
import { toDetailedState } from './row-mapping.js';

/** The detailed state, checked; InvalidSnapshotError when the stored row is not the shape the code expects. */
export async function getSupervisorState(db: Executor, supervisorId: string): Promise<SupervisorDetailedState | null> {
  const row = await withDatabaseErrors('getSupervisorState', supervisorId, () =>
    db.selectFrom('supervisor_states').selectAll().where('id', '=', supervisorId).executeTakeFirst(),
  );
  return row ? toDetailedState(row) : null;
}

/**
 * Supervisors, newest first, one page at a time: `next` names the last row of a page another one follows (pass it as
 * `after` for that page), null on the last page, full or not; `total` counts the rows of every page (same filters), read with this one.
 * A corrupt row does not hide the others: it is listed with state and problems.
 */
export async function listSupervisors(
  db: Executor,
  options: ListSupervisorsOptions = {},
): Promise<{ supervisors: SupervisorDetailedState[]; invalid: InvalidSnapshotError[]; next: string | null; total: number }> {
  const limit = options.limit ?? 1000;
  const pendingOnly = options.pendingQuestionsOnly === true;
  const states = options.states ?? [];
  // The same filters for the page and its count. A finished supervisor's leftover questions can no longer be answered:
  // they are not "pending" for anyone.
  const matching = () =>
    db
      .selectFrom('supervisor_states')
      .$if(pendingOnly, (query) => query.where(sql<boolean>`pending_questions <> '[]'::jsonb`).where('state', 'not in', ['completed', 'failed']))
      .$if(states.length > 0, (query) => query.where('state', 'in', states));
  const [rows, counted] = await withDatabaseErrors('listSupervisors', undefined, () => {
    let query = matching().selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc');
    // Keyset: rows after the given one in this order (an id no longer stored yields an empty page).
    if (options.after !== undefined) {
      query = query.where(sql<boolean>`(created_at, id) < (SELECT a.created_at, a.id FROM supervisor_states a WHERE a.id = ${options.after}::uuid)`);
    }
    // One row more than the page: whether another page follows, so the last page says next null even when it is full.
    return Promise.all([query.limit(limit + 1).execute(), matching().select(sql<string | number>`count(*)`.as('n')).executeTakeFirst()]);
  });
  const supervisors: SupervisorDetailedState[] = [];
  const invalid: InvalidSnapshotError[] = [];
  const more = rows.length > limit;
  for (const row of more ? rows.slice(0, limit) : rows) {
    try {
      supervisors.push(toDetailedState(row));
    } catch (error) {
      if (error instanceof InvalidSnapshotError) invalid.push(error);
      else throw error;
    }
  }
  return { supervisors, invalid, next: more ? (rows[limit - 1]?.id ?? null) : null, total: Number(counted?.n ?? 0) };
}

/** Supervisors with at least one pending question (served by the partial index), oldest update first. */
export async function getSupervisorsWithPendingQuestions(db: Executor): Promise<PendingQuestionsSummary[]> {
  const rows = await withDatabaseErrors('getSupervisorsWithPendingQuestions', undefined, () =>
    db
      .selectFrom('supervisor_states')
      .select(['id', 'name', 'state', 'phase', 'pending_questions', 'updated_at'])
      .where(sql<boolean>`pending_questions <> '[]'::jsonb`)
      .where('state', 'not in', ['completed', 'failed'])
      .orderBy('updated_at')
      .execute(),
  );
  return rows.map((row) => {
    const parsed = parsePendingQuestions(row.pending_questions);
    if (!parsed.ok) throw new InvalidSnapshotError(row.id, parsed.problems);
    return { supervisorId: row.id, name: row.name, state: row.state, phase: row.phase, pendingQuestions: parsed.value, updatedAt: toIso(row.updated_at) ?? '' };
  });
}

/**
 * The raw stored state the restoration protocol validates; null when there is no row. Nothing is trusted here. The
 * snapshot is the one of the checkpoint the row points to (null when that checkpoint is missing).
 */
/** The rows of the given supervisors joined with their current snapshot, as restoration reads them (one query). */
export async function getSupervisorStatesForRestoration(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, SupervisorRestorationContext>> {
  if (supervisorIds.length === 0) return new Map();
  const rows = await withDatabaseErrors('getSupervisorStatesForRestoration', supervisorIds.length === 1 ? supervisorIds[0] : undefined, () =>
    db
      .selectFrom(wantedIds(supervisorIds))
      .innerJoinLateral(
        (eb) =>
          eb
            .selectFrom('supervisor_states as s')
            .leftJoin('supervisor_checkpoints as c', (join) => join.onRef('c.supervisor_id', '=', 's.id').onRef('c.seq', '=', 's.checkpoint_seq'))
            // state read as text so an unknown value reaches validation instead of failing the query.
            .select(sql<string>`s.state::text`.as('state_text'))
            .select('c.snapshot')
            .selectAll('s')
            .whereRef('s.id', '=', 'wanted.id')
            .offset(0)
            .as('row'),
        (join) => join.onTrue(),
      )
      .selectAll('row')
      .execute(),
  );
  return new Map(
    rows.map((row) => [
      row.id,
      {
        supervisorId: row.id,
        name: row.name,
        state: row.state_text,
        phase: row.phase,
        currentActivity: row.current_activity,
        progress: row.progress,
        errorMessage: row.error_message,
        spawnedTaskIds: row.spawned_task_ids,
        pendingQuestions: row.pending_questions,
        restorationCount: row.restoration_count,
        lastRestoredAt: row.last_restored_at,
        restorationSource: row.restoration_source,
        lastHeartbeat: row.last_heartbeat,
        conversationLength: row.conversation_length,
        snapshot: row.snapshot ?? null,
        machineVersion: row.machine_version,
        checkpointSeq: Number(row.checkpoint_seq),
        driver: row.driver,
        step: Number(row.step),
        updatedAt: row.updated_at,
      },
    ]),
  );
}

export async function getSupervisorStateForRestoration(db: Executor, supervisorId: string): Promise<SupervisorRestorationContext | null> {
  return (await getSupervisorStatesForRestoration(db, [supervisorId])).get(supervisorId) ?? null;
}

/** Ids of supervisors to bring back after a restart: every one not completed or failed. */
export async function listRestorableSupervisorIds(db: Executor): Promise<string[]> {
  const rows = await withDatabaseErrors('listRestorableSupervisorIds', undefined, () =>
    db.selectFrom('supervisor_states').select('id').where('state', 'not in', ['completed', 'failed']).orderBy('created_at').execute(),
  );
  return rows.map((row) => row.id);
}

/**
 * Stored supervisors (finished ones too) with their state and owner: the given ids, or one page of all of them in id
 * order after `after`.
 */
export async function listSupervisorOwners(
  db: Executor,
  options: { ids: readonly string[] } | { after?: string; limit: number },
): Promise<Array<{ id: string; state: string; owner: string | null; epoch: number; ownerLive: boolean }>> {
  if ('ids' in options && options.ids.length === 0) return [];
  const rows = await withDatabaseErrors('listSupervisorOwners', undefined, () => {
    let query = db
      .selectFrom('supervisor_states as s')
      .leftJoin('supervisor_daemons as d', 'd.id', 's.owner')
      .select(['s.id', 's.owner', 's.epoch'])
      .select(sql<string>`s.state::text`.as('state_text'))
      .select(sql<boolean | null>`d.lease_expires_at > now() AND d.stopped_at IS NULL`.as('live'));
    if ('ids' in options) return query.where('s.id', 'in', [...options.ids]).execute();
    if (options.after !== undefined) query = query.where('s.id', '>', options.after);
    return query.orderBy('s.id').limit(options.limit).execute();
  });
  return rows.map((row) => ({ id: row.id, state: row.state_text, owner: row.owner, epoch: Number(row.epoch), ownerLive: row.live === true }));
}
