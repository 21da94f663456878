// Upgrades persisted snapshots written by older machine versions, one registered step at a time.

import { SUPERVISOR_MACHINE_VERSION } from './supervisor-machine.js';

/** Turns a persisted snapshot of version `from` into one of version `from + 1`. */
export type SnapshotMigration = (snapshot: Record<string, unknown>) => Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * 1 → 2: the snapshot holds open work only. Finished tasks leave `tasks` (their rows in supervisor_tasks keep them) and
 * `answeredQuestions` becomes a count (migration 20261202000001 copied the answers into supervisor_questions).
 * Anything that is not the expected shape is left for the validation guards to report.
 */
export const openWorkOnly: SnapshotMigration = (snapshot) => {
  const context = snapshot.context;
  if (!isRecord(context) || !Array.isArray(context.tasks)) return snapshot;
  const status = (task: unknown) => (isRecord(task) ? task.status : undefined);
  const { answeredQuestions, ...rest } = context;
  return {
    ...snapshot,
    context: {
      ...rest,
      tasks: context.tasks.filter((task) => status(task) !== 'completed' && status(task) !== 'failed'),
      answeredQuestionCount: Array.isArray(answeredQuestions) ? answeredQuestions.length : 0,
      completedTaskCount: context.tasks.filter((task) => status(task) === 'completed').length,
      failedTaskCount: context.tasks.filter((task) => status(task) === 'failed').length,
    },
  };
};

/** Registered migrations by the version they upgrade FROM. */
export const SNAPSHOT_MIGRATIONS: ReadonlyMap<number, SnapshotMigration> = new Map([[1, openWorkOnly]]);

export type SnapshotMigrationResult = { ok: true; snapshot: Record<string, unknown>; migratedFrom: number | null } | { ok: false; problem: string };

export function migrateSnapshot(
  snapshot: Record<string, unknown>,
  version: number | null,
  migrations: ReadonlyMap<number, SnapshotMigration> = SNAPSHOT_MIGRATIONS,
  target: number = SUPERVISOR_MACHINE_VERSION,
): SnapshotMigrationResult {
  if (version === null || !Number.isInteger(version)) return { ok: false, problem: 'machine version is missing' };
  if (version > target) return { ok: false, problem: `machine version ${version} is newer than this runtime's ${target}: upgrade supervisor-runtime` };
  let current = snapshot;
  for (let from = version; from < target; from++) {
    const migration = migrations.get(from);
    if (!migration) return { ok: false, problem: `machine version ${version} is not supported and no migration from ${from} to ${from + 1} is registered` };
    current = migration(current);
  }
  return { ok: true, snapshot: current, migratedFrom: version === target ? null : version };
}
