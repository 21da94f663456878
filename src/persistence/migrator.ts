// Applies migrations/*.sql in name order under an advisory lock and records them, on Postgres and PGlite alike.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { DatabaseUnavailableError, SupervisorRuntimeError, errorText } from '../domain/errors.js';
import { isConnectionError, isNoSchemaSelected } from './database-errors.js';
import { NO_TIMEOUT_MARKER, type Database } from './database.js';
import { migrationsFolder } from './package-root.js';

export interface Migration {
  name: string;
  sql: string;
}

export interface MigrationProvider {
  getMigrations(): Promise<Migration[]>;
}

/** Reads `*.sql` files from a folder (default: the package's migrations/). */
export class FileMigrationProvider implements MigrationProvider {
  constructor(private readonly folder: string = migrationsFolder()) {}

  async getMigrations(): Promise<Migration[]> {
    const files = (await readdir(this.folder)).filter((file) => file.endsWith('.sql')).sort();
    return Promise.all(
      files.map(async (file) => ({ name: file.replace(/\.sql$/, ''), sql: await readFile(join(this.folder, file), 'utf8') })),
    );
  }
}

export class MigrationError extends SupervisorRuntimeError {
  override readonly name = 'MigrationError';
  constructor(
    message: string,
    readonly migration: string | null,
    options?: { cause?: unknown },
  ) {
    super(message, undefined, options);
  }
}

export interface MigrationResultSet {
  /** Migrations applied by this call, in order. */
  applied: string[];
  /** Migrations that were already applied. */
  alreadyApplied: string[];
  /** Set when nothing was applied because a migration failed or the order is wrong; the database is unchanged. */
  error?: MigrationError;
}

export interface MigrationStatus {
  name: string;
  appliedAt: Date | null;
}

const TABLE = 'supervisor_runtime_migrations';

/**
 * Apply every pending migration in one transaction. A second process migrating at the same time waits on the
 * advisory lock, then finds the files recorded and applies none. Never throws for a failed migration: the result says.
 */
export async function migrateToLatest(database: Database, provider: MigrationProvider = new FileMigrationProvider()): Promise<MigrationResultSet> {
  const migrations = await provider.getMigrations();
  const result: MigrationResultSet = { applied: [], alreadyApplied: [] };
  let current: string | null = null;
  try {
    await database.db.transaction().execute(async (trx) => {
      // Keyed by schema so test schemas migrate side by side; hashtext is stable across sessions.
      // Migrations may take as long as they need: no statement timeout here (the marker exempts the client side).
      if (database.kind === 'postgres') await sql.raw(`${NO_TIMEOUT_MARKER} SET LOCAL statement_timeout = 0`).execute(trx);
      await sql.raw(`${NO_TIMEOUT_MARKER} SELECT pg_advisory_xact_lock(hashtext('supervisor-runtime-migrations:' || current_schema()))`).execute(trx);
      await sql`CREATE TABLE IF NOT EXISTS ${sql.table(TABLE)} (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`.execute(trx);
      const done = new Set((await trx.selectFrom(TABLE).select('name').execute()).map((row) => row.name));
      const lastApplied = [...done].sort().at(-1);
      const pending = migrations.filter((migration) => !done.has(migration.name));
      result.alreadyApplied = migrations.filter((migration) => done.has(migration.name)).map((migration) => migration.name);
      const outOfOrder = lastApplied ? pending.find((migration) => migration.name < lastApplied) : undefined;
      if (outOfOrder) {
        throw new MigrationError(
          `Migration ${outOfOrder.name} is new but sorts before ${lastApplied}, which is already applied. ` +
            'New migrations must always have a name that comes alphabetically after the last executed migration: rename the file with a later timestamp.',
          outOfOrder.name,
        );
      }
      for (const migration of pending) {
        current = migration.name;
        await database.executeScript(trx, migration.sql);
        await trx.insertInto(TABLE).values({ name: migration.name }).execute();
        result.applied.push(migration.name);
      }
    });
  } catch (error) {
    result.applied = [];
    result.error =
      error instanceof MigrationError
        ? error
        : new MigrationError(
            isConnectionError(error) || error instanceof DatabaseUnavailableError
              ? `Could not reach the database to migrate it (${database.description}): ${errorText(error)}. Nothing was applied; check that DATABASE_URL points at a running Postgres (or, unset, that the PGlite data folder is usable) and start again.`
              : isNoSchemaSelected(error)
                ? `Migration ${current ?? '(setup)'} failed: ${errorText(error)}. Nothing was applied: the connection's search_path names no schema that exists (a search_path in DATABASE_URL's options points at a schema nobody created). Create it (CREATE SCHEMA …), or drop search_path from the URL and set SUPERVISOR_RUNTIME_DATABASE_SCHEMA instead (the runtime creates that schema), then start again.`
                : `Migration ${current ?? '(setup)'} failed: ${errorText(error)}. Nothing was applied; fix the SQL or the database and run \`supervisor-runtime migrate\` again.`,
            current,
            { cause: error },
          );
  }
  return result;
}

/** Every known migration with the time it was applied, or null when it is pending. */
export async function migrationStatus(database: Database, provider: MigrationProvider = new FileMigrationProvider()): Promise<MigrationStatus[]> {
  const migrations = await provider.getMigrations();
  const exists = await sql<{ found: string | null }>`SELECT to_regclass(${TABLE}) AS found`.execute(database.db);
  const applied = new Map<string, Date>();
  if (exists.rows[0]?.found) {
    for (const row of await database.db.selectFrom(TABLE).selectAll().execute()) applied.set(row.name, new Date(row.applied_at));
  }
  return migrations.map((migration) => ({ name: migration.name, appliedAt: applied.get(migration.name) ?? null }));
}

/** Migrate or throw the result's error: for callers (the daemon, tests) that cannot continue without a schema. */
export async function migrateOrThrow(database: Database, provider?: MigrationProvider): Promise<MigrationResultSet> {
  const result = await migrateToLatest(database, provider);
  if (result.error) throw result.error;
  return result;
}
