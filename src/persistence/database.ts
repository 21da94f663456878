// The one seam between Postgres (through pg) and embedded PGlite: everything above it sees a Kysely<DatabaseSchema>.

import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { resolve } from 'node:path';
import { lockDataFolder, type DataFolderLock } from './data-folder-lock.js';
import type { DatabaseSchema } from './schema.js';

export type DatabaseKind = 'postgres' | 'pglite';

export interface DatabaseConfig {
  /** postgres://… selects real Postgres; unset selects embedded PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data folder (default ./.supervisor-runtime); ignored with databaseUrl. */
  dataDir?: string | undefined;
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

/** A pg client that prepares marked statements by name; everything else goes through unchanged. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
/** How much longer than the server's statement timeout the client waits for any answer at all. */
const CLIENT_GRACE_MS = 2_000;
/** The longest a new connection may take (shorter when the statement timeout plus grace is shorter). */
const CONNECT_TIMEOUT_MS = 5_000;
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

class PreparingClient extends pg.Client {
  readonly #answerWithinMs: number;

  constructor(config?: pg.ClientConfig & { srAnswerWithinMs?: number }) {
    super(config);
    this.#answerWithinMs = config?.srAnswerWithinMs ?? 0;
  }

  override query(...args: unknown[]): never {
    const [text, values] = args;
    let run: () => Promise<unknown>;
    if (typeof text === 'string' && Array.isArray(values) && args.length === 2) {
      const exempt = text.startsWith(NO_TIMEOUT_MARKER);
      const marker = exempt ? null : PREPARED_STATEMENT_MARKER.exec(text);
      run = marker ? () => super.query({ name: `sr_${marker[1]}`, text, values }) : () => super.query(text, values);
      if (this.#answerWithinMs > 0 && !exempt) return this.#answerWithin(run, this.#answerWithinMs) as never;
      return run() as never;
    }
    return (super.query as (...rest: unknown[]) => unknown)(...args) as never;
  }

  /**
   * A server that does not answer at all (frozen, or the network stalled) never trips its own statement_timeout: the
   * client gives up after `ms`, drops the connection (the pool then discards it) and reports outcome unknown.
   */
  async #answerWithin(run: () => Promise<unknown>, ms: number): Promise<unknown> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }, ms);
    try {
      return await run();
    } catch (error) {
      if (timedOut) throw new QueryTimeoutError(ms);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

export async function openDatabase(config: DatabaseConfig = {}): Promise<Database> {
  if (config.schema !== undefined && !SCHEMA_NAME.test(config.schema)) {
    throw new Error(`Invalid schema name "${config.schema}": use lower-case letters, digits and underscores, starting with a letter.`);
  }
  return config.databaseUrl ? openPostgres(config.databaseUrl, config) : openPglite(config);
}

async function openPostgres(url: string, config: DatabaseConfig): Promise<Database> {
  const schema = config.schema ?? null;
  const timeoutMs = config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const options = [...(schema ? [`-c search_path=${schema}`] : []), ...(timeoutMs > 0 ? [`-c statement_timeout=${timeoutMs}`] : [])].join(' ');
  const poolConfig: pg.PoolConfig & { srAnswerWithinMs: number } = {
    Client: PreparingClient,
    connectionString: url,
    max: config.poolSize ?? 10,
    // A server that accepts TCP but never answers the handshake (frozen) must not outlast the statement bound either.
    connectionTimeoutMillis: timeoutMs > 0 ? Math.min(CONNECT_TIMEOUT_MS, timeoutMs + CLIENT_GRACE_MS) : CONNECT_TIMEOUT_MS,
    ...(options ? { options } : {}),
    // pg.Pool hands its whole config to each client it creates.
    srAnswerWithinMs: timeoutMs > 0 ? timeoutMs + CLIENT_GRACE_MS : 0,
  };
  const pool = new pg.Pool(poolConfig);
  // An idle client losing its server emits 'error' on the pool; unhandled, that kills the daemon.
  pool.on('error', (error) => config.onBackgroundError?.(error));
  // A client that loses its server while checked out emits 'error' on itself, not on the pool: without a listener
  // that is an uncaught exception. The query in flight still fails and is retried by its caller.
  pool.on('connect', (client) => client.on('error', (error) => config.onBackgroundError?.(error)));
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
  const listeners = new Set<() => Promise<void>>();
  if (schema) await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
  return {
    kind: 'postgres',
    db,
    description: redactDatabaseUrl(url) + (schema ? ` (schema ${schema})` : ''),
    schema,
    // pg sends a query without parameters over the simple protocol, which accepts several statements.
    executeScript: async (executor, script) => {
      await sql.raw(`${NO_TIMEOUT_MARKER}\n${script}`).execute(executor);
    },
    health: (healthTimeoutMs) => checkHealth(db, 'postgres', healthTimeoutMs),
    listen: async (channel, onNotify) => {
      const stop = await listenOnPostgres(url, channel, onNotify, config.onBackgroundError);
      listeners.add(stop);
      return async () => {
        listeners.delete(stop);
        await stop();
      };
    },
    notificationChannel: (name) => channelName(schema, name),
    close: async () => {
      await Promise.all([...listeners].map((stop) => stop()));
      listeners.clear();
      await db.destroy();
    },
  };
}

async function openPglite(config: DatabaseConfig): Promise<Database> {
  const schema = config.schema ?? null;
  let lock: DataFolderLock | null = null;
  let pglite: PGlite;
  let description: string;
  const shared = config.pglite;
  if (shared) {
    pglite = shared;
    description = 'PGlite (shared instance)';
  } else if (config.inMemory) {
    pglite = new PGlite();
    description = 'PGlite (in memory)';
  } else {
    const folder = resolve(config.dataDir ?? DEFAULT_DATA_DIR);
    lock = lockDataFolder(folder);
    try {
      pglite = new PGlite(resolve(folder, 'pgdata'));
      await pglite.waitReady;
    } catch (error) {
      lock.release();
      throw error;
    }
    description = `PGlite (${folder})`;
  }
  await pglite.waitReady;
  if (schema) {
    // PGlite is one session, so search_path set once holds for every later query.
    await pglite.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";`);
  }
  const db = new Kysely<DatabaseSchema>({ dialect: new PGliteDialect(pglite) });
  let closed = false;
  return {
    kind: 'pglite',
    db,
    description: description + (schema ? ` (schema ${schema})` : ''),
    schema,
    // The PGlite dialect uses the extended protocol (one statement); exec() runs a script in the same single session,
    // so inside a Kysely transaction it is part of that transaction.
    executeScript: async (_executor, script) => {
      await pglite.exec(script);
    },
    health: (timeoutMs) => checkHealth(db, 'pglite', timeoutMs),
    listen: async (channel, onNotify) => {
      const unsubscribe = await pglite.listen(channel, onNotify);
      return async () => {
        if (!pglite.closed) await unsubscribe();
      };
    },
    notificationChannel: (name) => channelName(schema, name),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        // The dialect's destroy() closes the PGlite instance, which a shared one must survive.
        if (!shared) await db.destroy();
      } finally {
        if (!shared && !pglite.closed) await pglite.close();
        lock?.release();
      }
    },
  };
}

function channelName(schema: string | null, name: string): string {
  return `sr_${schema ?? 'public'}_${name}`.toLowerCase().slice(0, 63);
}

/** One client outside the pool that LISTENs, and comes back after a lost connection (notifications meanwhile are lost; pollers cover them). */
async function listenOnPostgres(url: string, channel: string, onNotify: (payload: string) => void, onError?: (error: Error) => void): Promise<() => Promise<void>> {
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    next.on('notification', (message) => {
      if (message.channel === channel) onNotify(message.payload ?? '');
    });
    const reconnect = (error?: Error) => {
      if (error) onError?.(error);
      if (stopped || client !== next) return;
      client = null;
      void next.end().catch(() => undefined);
      clearTimeout(retry);
      retry = setTimeout(() => void connect().catch(() => undefined), 1_000);
      retry.unref();
    };
    next.on('error', reconnect);
    next.on('end', () => reconnect());
    client = next;
    try {
      await next.connect();
      await next.query(`LISTEN "${channel}"`);
    } catch (error) {
      reconnect(error as Error);
      throw error;
    }
  };
  await connect().catch(() => undefined);
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const current = client;
    client = null;
    await current?.end().catch(() => undefined);
  };
}

async function checkHealth(db: Kysely<DatabaseSchema>, kind: DatabaseKind, timeoutMs = 2_000): Promise<DatabaseHealth> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([sql`SELECT 1`.execute(db), timeout]);
    return { ok: true, kind, detail: 'ok' };
  } catch (error) {
    return { ok: false, kind, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
