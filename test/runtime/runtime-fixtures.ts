// Shared pieces of the runtime specifications: runtimes on a test database, "the row equals the actor", and an
// observer of the statements the runtime commits (a Kysely plugin on the real database, never a mock).

import {
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type KyselyPlugin,
  type OperationNode,
  type QueryId,
  type RootOperationNode,
} from 'kysely';
import { afterEach, expect } from 'vitest';
import { createActor } from 'xstate';
import { supervisorMachine, type SupervisorSnapshot } from '../../src/machines/supervisor-machine.js';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import type { DatabaseSchema } from '../../src/persistence/schema.js';
import {
  getSupervisorState,
  getSupervisorStateForRestoration,
  listCheckpoints,
  type Executor,
} from '../../src/persistence/supervisor-repository.js';
import type { DurableSupervisor } from '../../src/runtime/durable-supervisor.js';
import type { Logger } from '../../src/runtime/logger.js';
import { createRuntime, type RuntimeOptions, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import type { DatabaseTarget } from '../helpers/databases.js';

/**
 * Starts runtimes on demand and shuts every one down after each test (before the isolated schema is dropped:
 * vitest runs after-hooks in reverse order). Heartbeats are off unless a test turns them on.
 */
export function useRuntimes(database: () => Database): (options?: Partial<RuntimeOptions>) => SupervisorRuntime {
  const started: SupervisorRuntime[] = [];
  afterEach(async () => {
    const runtimes = started.splice(0);
    await Promise.all(runtimes.map((runtime) => runtime.shutdown({ closeDatabase: false })));
  });
  return (options = {}) => {
    const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0, saveRetry: { attempts: 2, baseDelayMs: 5 }, ...options });
    started.push(runtime);
    return runtime;
  };
}

/** The stored row, read fresh, equals the durable supervisor and its live actor; the stored snapshot recreates it. */
export async function expectStoredEqualsLive(db: Executor, supervisor: DurableSupervisor): Promise<void> {
  const { value, context } = supervisor.snapshot;
  const row = await getSupervisorState(db, supervisor.id);
  expect(row, `row of ${supervisor.id}`).toMatchObject({
    id: supervisor.id,
    name: context.name,
    state: value,
    phase: context.phase,
    currentActivity: context.currentActivity,
    progress: context.progress,
    errorMessage: context.errorMessage,
    spawnedTaskIds: context.tasks.map((task) => task.id),
    pendingQuestions: context.pendingQuestions,
    restorationCount: context.restorationCount,
    lastRestoredAt: context.lastRestoredAt,
    restorationSource: context.restorationSource,
    conversationLength: context.conversationLength,
    step: supervisor.step,
  });
  const raw = await getSupervisorStateForRestoration(db, supervisor.id);
  expect(raw?.snapshot).toEqual(supervisorMachine.getPersistedSnapshot(supervisor.snapshot));
  const recreated = createActor(supervisorMachine, { snapshot: raw?.snapshot as SupervisorSnapshot }).getSnapshot();
  expect(recreated.value).toBe(value);
  expect(recreated.context).toEqual(context);
  // The live actor (what the inspector shows) agrees with the durable snapshot.
  expect(supervisor.actor.getSnapshot().value).toBe(value);
  expect(supervisor.actor.getSnapshot().context).toEqual(context);
}

export async function countRows(db: Executor, table: string, supervisorId: string): Promise<number> {
  const result = await sql<{ n: string | number }>`SELECT count(*) AS n FROM ${sql.table(table)} WHERE supervisor_id = ${supervisorId}`.execute(db);
  return Number(result.rows[0]?.n);
}

/** Checkpoint reasons, oldest first. */
export async function checkpointReasons(db: Executor, supervisorId: string): Promise<string[]> {
  return (await listCheckpoints(db, supervisorId, { limit: 1000 })).map((checkpoint) => checkpoint.reason).reverse();
}

/** Everything a refused event must leave untouched, in one comparable value. */
export async function storedFootprint(db: Executor, supervisorId: string) {
  return {
    row: await getSupervisorStateForRestoration(db, supervisorId),
    checkpoints: await countRows(db, 'supervisor_checkpoints', supervisorId),
    conversation: await countRows(db, 'supervisor_conversation', supervisorId),
    outbox: await countRows(db, 'supervisor_outbox', supervisorId),
    tasks: await db.selectFrom('supervisor_tasks').selectAll().where('supervisor_id', '=', supervisorId).orderBy('id').execute(),
  };
}

// ---------------------------------------------------------------- committed statements

export interface CommittedStatement {
  /** `full`: the save point statement (row + checkpoint + …); `light`: an UPDATE of supervisor_states. */
  kind: 'full' | 'light';
  parameters: unknown[];
  /** A full save's checkpoint reasons, one per supervisor it saves (empty for `light`). */
  reasons: string[];
}

/**
 * The checkpoint reasons a save statement carries: a group's rows are one jsonb document (its first parameter), one
 * supervisor's row is plain parameters with the reason last of the row's 21.
 */
export function saveReasons(node: RootOperationNode): string[] {
  if (node.kind !== 'RawNode' || !node.sqlFragments[0]?.includes('sr:save_full')) return [];
  const parameters = valuesOf(node.parameters);
  if (node.sqlFragments.join('?').includes('jsonb_to_recordset(?::jsonb) AS i(')) {
    return (JSON.parse(String(parameters[0])) as Array<{ reason: string }>).map((row) => row.reason);
  }
  return [String(parameters[20])];
}

function valuesOf(nodes: readonly OperationNode[]): unknown[] {
  return nodes.map((node) => (node.kind === 'ValueNode' ? (node as OperationNode & { value: unknown }).value : undefined));
}

function classify(node: RootOperationNode): CommittedStatement | null {
  if (node.kind === 'RawNode' && node.sqlFragments.join('?').includes('INSERT INTO supervisor_states')) {
    return { kind: 'full', parameters: valuesOf(node.parameters), reasons: saveReasons(node) };
  }
  if (node.kind === 'UpdateQueryNode' && JSON.stringify(node.table).includes('supervisor_states')) return { kind: 'light', parameters: [], reasons: [] };
  return null;
}

/**
 * The same database, seen through a plugin that calls `onCommitted` when a write of supervisor_states has returned
 * from the server: each such write is one autocommitted statement, so at that moment it is committed.
 */
export function observeCommits(database: Database, onCommitted: (statement: CommittedStatement) => void): Database {
  const pending = new WeakMap<QueryId, CommittedStatement>();
  const plugin: KyselyPlugin = {
    transformQuery({ node, queryId }) {
      const statement = classify(node);
      if (statement) pending.set(queryId, statement);
      return node;
    },
    async transformResult({ result, queryId }) {
      const statement = pending.get(queryId);
      if (statement) onCommitted(statement);
      return result;
    },
  };
  return { ...database, db: database.db.withPlugin(plugin) };
}

// ---------------------------------------------------------------- a database handle the runtime can lose

/**
 * A Database on the test's own data that the runtime can close (or a test can destroy) without closing the test's
 * connection, so the test still reads what was stored. Postgres: a second pool on the test's schema. PGlite (one
 * session, shared by the file): a Kysely whose connections run their statements through the test's Kysely; once
 * destroyed, Kysely refuses every query, as it does for a closed pool.
 */
export async function openDatabaseHandle(target: DatabaseTarget, testDatabase: Database): Promise<Database> {
  if (target.name === 'postgres') {
    return openDatabase({ databaseUrl: target.url, schema: testDatabase.schema ?? undefined, poolSize: 4 });
  }
  const db = new Kysely<DatabaseSchema>({ dialect: delegatingDialect(testDatabase.db) });
  return {
    ...testDatabase,
    db,
    description: `${testDatabase.description} (handle)`,
    async health() {
      try {
        await sql`SELECT 1`.execute(db);
        return { ok: true, kind: 'pglite', detail: 'ok' };
      } catch (error) {
        return { ok: false, kind: 'pglite', detail: error instanceof Error ? error.message : String(error) };
      }
    },
    close: () => db.destroy(),
  };
}

function delegatingDialect(through: Kysely<DatabaseSchema>): Dialect {
  const noTransactions = async () => {
    throw new Error('this test handle runs single statements only');
  };
  return {
    createAdapter: () => new PostgresAdapter(),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createDriver: (): Driver => ({
      init: async () => undefined,
      acquireConnection: async (): Promise<DatabaseConnection> => ({
        executeQuery: <R>(compiled: CompiledQuery) => through.executeQuery<R>(compiled),
        streamQuery: () => {
          throw new Error('this test handle does not stream');
        },
      }),
      beginTransaction: noTransactions,
      commitTransaction: noTransactions,
      rollbackTransaction: noTransactions,
      releaseConnection: async () => undefined,
      destroy: async () => undefined,
    }),
  };
}

// ---------------------------------------------------------------- logs

export interface RecordedLog {
  level: 'debug' | 'info' | 'warn' | 'error';
  data: object;
  message: string | undefined;
}

/** A logger that keeps what it is told, so a test can assert on retries and warnings. */
export function recordingLogger(): Logger & { entries: RecordedLog[] } {
  const entries: RecordedLog[] = [];
  const at = (level: RecordedLog['level']) => (data: object, message?: string) => {
    entries.push({ level, data, message });
  };
  const logger: Logger & { entries: RecordedLog[] } = {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}
