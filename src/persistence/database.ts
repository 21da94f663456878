// The one seam between Postgres (through pg) and embedded PGlite: everything above it sees a Kysely<DatabaseSchema>.
// Each side lives in its own file and is imported only when opened, so a daemon on PGlite never loads pg (nor the
// other way round), and the CLI's settings can name the default data folder without loading either.

import type { PGlite } from '@electric-sql/pglite';
import type { Kysely } from 'kysely';
import type { DatabaseSchema } from './schema.js';

export type DatabaseKind = 'postgres' | 'pglite';

export interface DatabaseConfig {
  /** postgres://… selects real Postgres; unset selects embedded PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data folder (default ./.supervisor-runtime); ignored with databaseUrl. */
  dataDir?: string | undefined;
  /**
   * PGlite: open the data folder only if it already holds a database; a missing or empty folder raises
   * NoEmbeddedDatabaseError and nothing is created (no folder, no initdb). For readers such as `check`. Ignored with
   * databaseUrl, inMemory and pglite.
   */
  mustExist?: boolean | undefined;
  /** PGlite in memory, nothing on disk (tests, throwaway demos). */
  inMemory?: boolean | undefined;
  /** Use this already open PGlite instance; close() leaves it open (tests share one per file, a schema per test). */
  pglite?: PGlite | undefined;
  /** Work inside this Postgres schema (created if missing); tests use one per test to stay isolated. */
  schema?: string | undefined;
  /** pg pool size (default 10). */
  poolSize?: number | undefined;
  /**
   * Postgres: a statement the server runs longer than this is cancelled (rolled back); one it does not answer at all
   * within this plus 2 s (a frozen server, a stalled network) fails with outcome unknown and its connection is dropped.
   * A new connection gets as long (at most 5 s). Default 10,000 ms; 0 turns both off. Migrations are exempt.
   */
  statementTimeoutMs?: number | undefined;
  /** Called with errors raised by idle pooled connections, which would otherwise crash the process. */
  onBackgroundError?: ((error: Error) => void) | undefined;
}

export interface DatabaseHealth {
  ok: boolean;
  kind: DatabaseKind;
  detail: string;
}

export interface Database {
  readonly kind: DatabaseKind;
  readonly db: Kysely<DatabaseSchema>;
  /** Where the data lives, with any password removed: safe to log. */
  readonly description: string;
  readonly schema: string | null;
  /** Run a multi-statement SQL script (a migration file) on the given executor (which may be a transaction). */
  executeScript(executor: Kysely<DatabaseSchema>, script: string): Promise<void>;
  health(timeoutMs?: number): Promise<DatabaseHealth>;
  /**
   * LISTEN on `channel` (name it with notificationChannel): a NOTIFY from any connection, or pg_notify() in a statement,
   * reaches `onNotify` after its transaction commits. On Postgres a dedicated connection listens and reconnects by
   * itself; resolves with a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** A channel name private to this schema (tests and deployments sharing one database never wake each other). */
  notificationChannel(name: string): string;
  close(): Promise<void>;
}

export const DEFAULT_DATA_DIR = './.supervisor-runtime';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A schema name the runtime takes: lower-case letters, digits and _, starting with a letter or _, at most 63. */
export function isSchemaName(name: string): boolean {
  return SCHEMA_NAME.test(name);
}

export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

/** Statements that start with this marker are hot paths, sent as named prepared statements (parsed once per connection). */
export const PREPARED_STATEMENT_MARKER = /^\/\* sr:([a-z0-9_]+) \*\//;

export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
/** Statements that may run as long as they need (migrations, and the lock that orders them). */
export const NO_TIMEOUT_MARKER = '/* sr:no_timeout */';

/** The error a statement fails with when the server did not answer in time: whether it was applied is unknown. */
export class QueryTimeoutError extends Error {
  override readonly name = 'QueryTimeoutError';
  readonly code = 'SR_QUERY_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`the database did not answer within ${timeoutMs} ms`);
  }
}

export async function openDatabase(config: DatabaseConfig = {}): Promise<Database> {
  if (config.schema !== undefined && !isSchemaName(config.schema)) {
    throw new Error(`Invalid schema name "${config.schema}": use lower-case letters, digits and underscores, starting with a letter.`);
  }
  if (config.databaseUrl) return (await import('./postgres-database.js')).openPostgres(config.databaseUrl, config);
  return (await import('./pglite-database.js')).openPglite(config);
}

/** A LISTEN channel name private to a schema. */
export function channelName(schema: string | null, name: string): string {
  return `sr_${schema ?? 'public'}_${name}`.toLowerCase().slice(0, 63);
}

