// Real Postgres through a pg pool: prepared hot statements, statement timeouts on both sides, and a LISTEN client
// that reconnects by itself.

import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { checkHealth } from './database-health.js';
import {
  channelName,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  NO_TIMEOUT_MARKER,
  PREPARED_STATEMENT_MARKER,
  QueryTimeoutError,
  redactDatabaseUrl,
  type Database,
  type DatabaseConfig,
} from './database.js';
import type { DatabaseSchema } from './schema.js';
import { runtimeTypes } from './timestamp-parser.js';

/** How much longer than the server's statement timeout the client waits for any answer at all. */
const CLIENT_GRACE_MS = 2_000;
/** The longest a new connection may take (shorter when the statement timeout plus grace is shorter). */
const CONNECT_TIMEOUT_MS = 5_000;

/** A pg client that prepares marked statements by name; everything else goes through unchanged. */
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

/**
 * The URL without its `options` query parameter, and that parameter. pg lets a URL's `options` replace the pool's
 * own, which would silently drop the schema and the statement timeout; the two are joined instead, the user's first.
 */
function splitUrlOptions(url: string): { url: string; options: string[] } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, options: [] };
  }
  if (!parsed.searchParams.has('options')) return { url, options: [] };
  const options = parsed.searchParams.getAll('options').filter((value) => value.trim() !== '');
  parsed.searchParams.delete('options');
  return { url: parsed.toString(), options };
}

export async function openPostgres(givenUrl: string, config: DatabaseConfig): Promise<Database> {
  const schema = config.schema ?? null;
  const timeoutMs = config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const { url, options: urlOptions } = splitUrlOptions(givenUrl);
  // Later settings win: the schema and statement timeout of this runtime's configuration over the URL's. JIT comes
  // first, so a URL can turn it back on: every statement here touches a few rows by key, and a row estimate that
  // stale statistics inflate past jit_above_cost made Postgres compile a 250-id batch read for 20 ms that then ran in 7.
  const options = [
    '-c jit=off',
    ...urlOptions,
    ...(schema ? [`-c search_path=${schema}`] : []),
    ...(timeoutMs > 0 ? [`-c statement_timeout=${timeoutMs}`] : []),
  ].join(' ');
  const poolConfig: pg.PoolConfig & { srAnswerWithinMs: number } = {
    Client: PreparingClient,
    connectionString: url,
    max: config.poolSize ?? 10,
    // A server that accepts TCP but never answers the handshake (frozen) must not outlast the statement bound either.
    connectionTimeoutMillis: timeoutMs > 0 ? Math.min(CONNECT_TIMEOUT_MS, timeoutMs + CLIENT_GRACE_MS) : CONNECT_TIMEOUT_MS,
    ...(options ? { options } : {}),
    types: runtimeTypes,
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
    description: redactDatabaseUrl(givenUrl) + (schema ? ` (schema ${schema})` : ''),
    schema,
    // pg sends a query without parameters over the simple protocol, which accepts several statements.
    executeScript: async (executor, script) => {
      await sql.raw(`${NO_TIMEOUT_MARKER}\n${script}`).execute(executor);
    },
    health: (healthTimeoutMs) => checkHealth(db, 'postgres', healthTimeoutMs),
    listen: async (channel, onNotify) => {
      const stop = await listenOnPostgres(givenUrl, channel, onNotify, config.onBackgroundError);
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
