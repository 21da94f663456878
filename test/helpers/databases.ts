// Runs a suite on every database we support: embedded PGlite always, real Postgres when reachable (required with CI=true).

import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import pg from 'pg';
import { pgliteFromTemplate } from './pglite-template.js';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { migrateOrThrow } from '../../src/persistence/migrator.js';
import { serverGate } from './servers.js';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type DatabaseTargetName = 'pglite' | 'postgres';

export interface DatabaseTarget {
  name: DatabaseTargetName;
  /** postgres://… for the real server; undefined for PGlite. */
  url: string | undefined;
}

export async function postgresReachable(url = TEST_DATABASE_URL): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  // A server going away mid-probe emits 'error' on the client; the probe's answer is "no", not a crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let cachedTargets: Promise<DatabaseTarget[]> | undefined;

/** PGlite, plus Postgres when reachable; with CI=true an unreachable Postgres fails the run instead of skipping. */
export function databaseTargets(): Promise<DatabaseTarget[]> {
  cachedTargets ??= (async () => {
    const reachable = await postgresReachable();
    const gate = serverGate('Postgres', reachable, `start Postgres on 127.0.0.1:5432 or set TEST_DATABASE_URL=postgres://… to run the Postgres suites`);
    const targets: DatabaseTarget[] = [{ name: 'pglite', url: undefined }];
    if (gate.run) targets.push({ name: 'postgres', url: TEST_DATABASE_URL });
    return targets;
  })();
  return cachedTargets;
}

function withServerOptions(url: string, serverOptions: string | undefined): string {
  if (!serverOptions) return url;
  const parsed = new URL(url);
  parsed.searchParams.set('options', [parsed.searchParams.get('options'), serverOptions].filter(Boolean).join(' '));
  return parsed.toString();
}

let counter = 0;
export function uniqueSchemaName(prefix = 't'): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Gives each test its own migrated schema on the target and drops it afterwards.
 * PGlite: one in-memory instance per file (started from the template cluster, see pglite-template.ts), a schema per test.
 */
export function useIsolatedDatabase(
  target: DatabaseTarget,
  options: {
    migrate?: boolean;
    /** Postgres server settings for this test's connections, as in a URL's `options` (`-c name=value …`). */
    serverOptions?: string;
  } = {},
): () => Database {
  let shared: PGlite | undefined;
  let current: Database | undefined;
  let schema = '';
  if (target.name === 'pglite') {
    beforeAll(async () => {
      shared = await pgliteFromTemplate();
    });
    afterAll(async () => {
      await shared?.close();
    });
  }
  beforeEach(async () => {
    schema = uniqueSchemaName();
    current = await openDatabase(target.name === 'pglite' ? { pglite: shared, schema } : { databaseUrl: withServerOptions(target.url ?? TEST_DATABASE_URL, options.serverOptions), schema, poolSize: 4 });
    if (options.migrate !== false) await migrateOrThrow(current);
  });
  afterEach(async () => {
    if (!current) return;
    const database = current;
    current = undefined;
    try {
      await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(database.db);
    } finally {
      await database.close();
    }
  });
  return () => {
    if (!current) throw new Error('useIsolatedDatabase: the database is only available inside a test');
    return current;
  };
}
