// Reads of fork lineage: which checkpoint a supervisor was forked from, and the forks made from a supervisor.

import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { Executor, ForkedTask } from './records.js';

/** One fork: the new supervisor, the supervisor and checkpoint it was made from, and when. */
export interface ForkRecord {
  supervisorId: string;
  sourceId: string;
  checkpointSeq: number;
  /** The checkpoint's running tasks and the tasks spawned for the fork in their place. */
  tasks: ForkedTask[];
  createdAt: string;
}

export interface ForkLineage {
  /** Where this supervisor was forked from; null when it was spawned. */
  forkedFrom: ForkRecord | null;
  /** The forks made from this supervisor, newest first. */
  forks: ForkRecord[];
}

const isForkedTask = (value: unknown): value is ForkedTask =>
  typeof value === 'object' && value !== null && ['from', 'to', 'description'].every((key) => typeof (value as Record<string, unknown>)[key] === 'string');

const toFork = (row: { supervisor_id: string; source_id: string; source_seq: string | number; tasks: unknown; created_at: Date }): ForkRecord => ({
  supervisorId: row.supervisor_id,
  sourceId: row.source_id,
  checkpointSeq: Number(row.source_seq),
  // Written by the fork's save point only; anything else found there is left out rather than trusted.
  tasks: Array.isArray(row.tasks) ? row.tasks.filter(isForkedTask) : [],
  createdAt: toIso(row.created_at) ?? '',
});

/** Both directions of a supervisor's lineage: its own origin (by key) and up to `limit` forks of it, newest first. */
export async function getForkLineage(db: Executor, supervisorId: string, options: { limit?: number } = {}): Promise<ForkLineage> {
  const [origin, forks] = await withDatabaseErrors('getForkLineage', supervisorId, () =>
    Promise.all([
      db.selectFrom('supervisor_forks').selectAll().where('supervisor_id', '=', supervisorId).executeTakeFirst(),
      db
        .selectFrom('supervisor_forks')
        .selectAll()
        .where('source_id', '=', supervisorId)
        .orderBy('created_at', 'desc')
        .orderBy('supervisor_id', 'desc')
        .limit(options.limit ?? 1000)
        .execute(),
    ]),
  );
  return { forkedFrom: origin ? toFork(origin) : null, forks: forks.map(toFork) };
}
