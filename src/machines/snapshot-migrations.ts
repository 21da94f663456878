// Upgrades persisted snapshots written by older machine versions, one registered step at a time.

import { SUPERVISOR_MACHINE_VERSION } from './supervisor-machine.js';

/** Turns a persisted snapshot of version `from` into one of version `from + 1`. */
export type SnapshotMigration = (snapshot: Record<string, unknown>) => Record<string, unknown>;

/** Registered migrations by the version they upgrade FROM. Version 1 is the first, so none are needed yet. */
export const SNAPSHOT_MIGRATIONS: ReadonlyMap<number, SnapshotMigration> = new Map();

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
