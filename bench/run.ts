// `npm run bench`: every figure of the runtime as a ratio to the raw database (and transport) doing the least the same
// job needs, measured in the same run, on real Postgres (+ NATS JetStream) and on embedded PGlite (+ the in-process bus).
// Env: BENCH_TARGETS (postgres,pglite), BENCH_SECONDS (per save-point scenario, default 5), BENCH_DATABASE_URL or
// DATABASE_URL, BENCH_NATS_URL or NATS_URL, BENCH_SECTIONS (saves,heartbeats,restore,delivery,memory,flatness,wal,statements),
// BENCH_INVESTIGATE=1, and the sizes below.

import { cpus, loadavg } from 'node:os';
import { PGlite } from '@electric-sql/pglite';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { openDatabase, redactDatabaseUrl, type Database } from '../src/persistence/database.js';
import { migrateOrThrow } from '../src/persistence/migrator.js';
import type { DatabaseSchema } from '../src/persistence/schema.js';
import { createInProcessBus } from '../src/transport/in-process-bus.js';
import { createNatsTransport } from '../src/transport/nats-transport.js';
import { streamNames } from '../src/transport/subjects.js';
import type { Transport } from '../src/transport/transport.js';
import { measureFlatness } from './flatness.js';
import { measureHeartbeats, measureIdleMemory } from './fleet.js';
import { measureInterleaved, type Measurement, type Scenario } from './measure.js';
import { preparedStatementDialect } from './prepared-statement-dialect.js';
import { measureQuestionDelivery } from './question-delivery.js';
import { measureRestoreAll } from './restore-all.js';
import { fullSaveScenario, groupSaveScenario, persistedSnapshotBytes, RAW_TABLE_SQL, rawUpsertScenario, runtimeScenario, type RawQuery } from './save-points.js';
import { measureStatementCost } from './statement-cost.js';
import { measureWal } from './wal.js';

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.BENCH_NATS_URL ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const TARGETS = (process.env.BENCH_TARGETS ?? 'postgres,pglite').split(',').map((name) => name.trim());
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SECTION_NAMES = ['saves', 'heartbeats', 'restore', 'delivery', 'memory', 'flatness', 'wal', 'statements'] as const;
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? SECTION_NAMES.join(',')).split(',').map((name) => name.trim()));
const runs = (name: (typeof SECTION_NAMES)[number]) => SECTIONS.has(name);
const INVESTIGATE = process.env.BENCH_INVESTIGATE === '1';
const CONCURRENCY = [1, 8] as const;
const size = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
/** Supervisors saving at once for the group-commit figure, compared with the raw UPSERT at 8 clients. */
const GROUP_SUPERVISORS = size('BENCH_GROUP_SUPERVISORS', 1_000);
const HEARTBEAT_SUPERVISORS = size('BENCH_HEARTBEAT_SUPERVISORS', 10_000);
const RESTORE_SUPERVISORS = size('BENCH_RESTORE_SUPERVISORS', 10_000);
const IDLE_SUPERVISORS = size('BENCH_IDLE_SUPERVISORS', 2_000);
const QUESTIONS = size('BENCH_QUESTIONS', 200);
const FLAT_ROUNDS = size('BENCH_FLAT_ROUNDS', 2_000);
const WAL_SAVES = size('BENCH_WAL_SAVES', 500);
const WARMUP_MS = 1_000;
/** Each scenario's measured time is split into this many rounds, taken in turn with the scenarios it is compared to. */
const ROUNDS = 5;

/** One database (and transport) to measure on; every section gets a fresh schema of it. */
interface Target {
  name: 'postgres' | 'pglite';
  describe(): Promise<string>;
  /** A migrated database in a new schema, the raw driver query on that schema, and a cleanup. */
  fresh(): Promise<{ database: Database; query: RawQuery; pool: pg.Pool | null; prepared: Kysely<DatabaseSchema> | null; close(): Promise<void> }>;
  /** A started transport with a fresh prefix, and its cleanup; null when none is reachable. */
  transport(): Promise<{ transport: Transport; label: string; close(): Promise<void> } | null>;
  close(): Promise<void>;
}

let schemaCounter = 0;
const schemaName = () => `bench_${process.pid}_${++schemaCounter}_${Math.random().toString(36).slice(2, 6)}`;

function postgresTarget(): Target {
  return {
    name: 'postgres',
    async describe() {
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
      try {
        const row = (await pool.query<{ version: string; sc: string }>("SELECT version() AS version, current_setting('synchronous_commit') AS sc")).rows[0];
        return `${row?.version ?? '?'} (synchronous_commit=${row?.sc ?? '?'}) at ${redactDatabaseUrl(DATABASE_URL)}`;
      } finally {
        await pool.end();
      }
    },
    async fresh() {
      const schema = schemaName();
      // 8 chains need 8 connections: every pool here holds up to 8.
      const database = await openDatabase({ databaseUrl: DATABASE_URL, schema, poolSize: 8 });
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8, options: `-c search_path=${schema}` });
      const preparedPool = new pg.Pool({ connectionString: DATABASE_URL, max: 8, options: `-c search_path=${schema}` });
      const prepared = new Kysely<DatabaseSchema>({ dialect: preparedStatementDialect(preparedPool) });
      await migrateOrThrow(database);
      await pool.query(RAW_TABLE_SQL);
      return {
        database,
        query: (text, parameters) => pool.query(text, parameters),
        pool,
        prepared,
        async close() {
          await prepared.destroy();
          await preparedPool.end().catch(() => undefined);
          await pool.end();
          await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(database.db).catch((error: unknown) => {
            console.error(`could not drop schema ${schema}: ${error instanceof Error ? error.message : String(error)}`);
          });
          await database.close();
        },
      };
    },
    async transport() {
      const nc = await connect({ servers: NATS_URL, timeout: 2_000 }).catch(() => null);
      if (!nc) return null;
      const info = nc.info;
      await nc.close();
      const prefix = `bench${process.pid}x${schemaCounter++}.`;
      const transport = createNatsTransport({ servers: NATS_URL, subjectPrefix: prefix, name: 'bench', logger: { info: () => {}, warn: () => {}, error: () => {} } });
      await transport.start();
      return {
        transport,
        label: `NATS JetStream ${info?.version ?? '?'} at ${NATS_URL}`,
        async close() {
          await transport.close();
          const admin = await connect({ servers: NATS_URL });
          const jsm = await jetstreamManager(admin);
          for (const name of Object.values(streamNames(prefix))) await jsm.streams.delete(name).catch(() => false);
          await admin.close();
        },
      };
    },
    close: async () => undefined,
  };
}

function pgliteTarget(): Target {
  const pglite = new PGlite();
  return {
    name: 'pglite',
    async describe() {
      const row = (await pglite.query<{ version: string }>('SELECT version() AS version')).rows[0];
      return `PGlite (in memory, in this process): ${row?.version ?? '?'}`;
    },
    async fresh() {
      const schema = schemaName();
      const database = await openDatabase({ pglite, schema });
      await migrateOrThrow(database);
      // PGlite has one connection: the raw query names the schema on each call, as the kysely side's search_path does.
      await pglite.exec(`SET search_path TO ${schema}; ${RAW_TABLE_SQL}`);
      return {
        database,
        query: (text, parameters) => pglite.query(text, parameters),
        pool: null,
        prepared: null,
        async close() {
          await pglite.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await database.close();
        },
      };
    },
    async transport() {
      const transport = createInProcessBus({ subjectPrefix: `bench${process.pid}.`, logger: { info: () => {}, warn: () => {}, error: () => {} } });
      await transport.start();
      return { transport, label: 'in-process bus', close: () => transport.close() };
    },
    close: () => pglite.close(),
  };
}

interface Row {
  scenario: string;
  measurement: Measurement;
  /** The raw UPSERT at the same concurrency; null for the baseline itself. */
  baseline: Measurement | null;
}

function formatTable(rows: Row[]): string {
  const header = ['scenario', 'ops/s', 'p50 ms', 'p99 ms', 'vs raw', 'client cpu ms/op'];
  const cells = rows.map(({ scenario, measurement, baseline }) => [
    scenario,
    measurement.opsPerSecond.toFixed(0),
    measurement.p50Ms.toFixed(2),
    measurement.p99Ms.toFixed(2),
    baseline ? `${(measurement.opsPerSecond / baseline.opsPerSecond).toFixed(2)}×` : 'baseline',
    measurement.clientCpuMsPerOp.toFixed(3),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((row) => row[column]?.length ?? 0)));
  const line = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.map(line)].join('\n');
}

async function saveSection(target: Target): Promise<void> {
  const fresh = await target.fresh();
  try {
    const rows: Row[] = [];
    const compare = async (scenarios: Scenario[]) => {
      try {
        const measurements = await measureInterleaved(scenarios, { warmupMs: WARMUP_MS, rounds: ROUNDS, roundMs: (SECONDS * 1000) / ROUNDS });
        measurements.forEach((measurement, index) => rows.push({ scenario: scenarios[index]?.name ?? '?', measurement, baseline: index === 0 ? null : (measurements[0] ?? null) }));
      } finally {
        for (const scenario of scenarios) await scenario.close();
      }
    };
    for (const workers of CONCURRENCY) {
      const label = workers === 1 ? '1 supervisor' : `${workers} supervisors`;
      const scenarios: Scenario[] = [
        rawUpsertScenario(`raw jsonb UPSERT, ${workers} client${workers === 1 ? '' : 's'}`, fresh.query, workers),
        await fullSaveScenario(`full save point, ${label}`, fresh.database.db, workers),
        await runtimeScenario(`runtime send SET_PHASE (full save), ${label}`, fresh.database, workers),
      ];
      if (INVESTIGATE && fresh.prepared) scenarios.push(await fullSaveScenario(`  investigate: full save, prepared statement, ${label}`, fresh.prepared, workers));
      await compare(scenarios);
    }
    await compare([
      rawUpsertScenario('raw jsonb UPSERT, 8 clients', fresh.query, 8),
      await groupSaveScenario(`full save points, ${GROUP_SUPERVISORS} supervisors (group commit)`, fresh.database, GROUP_SUPERVISORS),
      await runtimeScenario(`runtime send SET_PHASE, ${GROUP_SUPERVISORS} supervisors (group commit)`, fresh.database, GROUP_SUPERVISORS),
    ]);
    console.log(formatTable(rows));
    // The group rows' own baseline runs between group-commit rounds, whose WAL and vacuum work it can feel; the
    // 8-client UPSERT of the 8-supervisor comparison ran beside lighter work. Both ratios, so neither flatters.
    const raw8 = rows.find((row) => row.baseline === null && row.measurement.workers === 8);
    if (raw8) {
      const groups = rows.filter((row) => row.measurement.workers === GROUP_SUPERVISORS && row.baseline);
      const ratios = groups.map((row) => `${row.scenario.split(',')[0]} ${(row.measurement.opsPerSecond / raw8.measurement.opsPerSecond).toFixed(2)}×`);
      console.log(`group commit against the 8-client raw UPSERT of the 8-supervisor comparison (${raw8.measurement.opsPerSecond.toFixed(0)}/s): ${ratios.join(', ')}`);
    }
  } finally {
    await fresh.close();
  }
}

async function section<T>(target: Target, run: (fresh: Awaited<ReturnType<Target['fresh']>>) => Promise<T>): Promise<T> {
  const fresh = await target.fresh();
  try {
    return await run(fresh);
  } finally {
    await fresh.close();
  }
}

async function measureTarget(target: Target): Promise<void> {
  console.log(`\n== ${target.name}: ${await target.describe()}`);
  if (runs('saves')) {
    console.log(
      `save points: persisted snapshot of ${persistedSnapshotBytes()} bytes (2 tasks, 2 questions); per scenario ${WARMUP_MS / 1000} s warm-up, ` +
        `then ${SECONDS} s measured in ${ROUNDS} rounds interleaved with the scenarios it is compared to\n`,
    );
    await saveSection(target);
    console.log('');
  }

  if (runs('heartbeats')) {
    const beats = await section(target, ({ database, query }) => measureHeartbeats(database, query, HEARTBEAT_SUPERVISORS, 15_000));
    console.log(
      `heartbeats, ${beats.supervisors} supervisors: one round ${beats.roundMs.toFixed(0)} ms (transitions ${beats.transitionsCpuMs.toFixed(0)} ms cpu, ` +
        `one batched statement ${beats.statementMs.toFixed(0)} ms) vs ${beats.rawUpdatesMs.toFixed(0)} ms of ${beats.supervisors} raw single-row UPDATEs, 8 at a time ` +
        `(statement ${(beats.rawUpdatesMs / beats.statementMs).toFixed(1)}×, whole round ${(beats.rawUpdatesMs / beats.roundMs).toFixed(1)}×); ` +
        `node cpu every ${beats.intervalMs / 1000} s = ${(beats.coreShareAtInterval * 100).toFixed(2)} % of one core`,
    );
  }

  if (runs('restore')) {
    const restore = await section(target, ({ database, query }) => measureRestoreAll(database, query, RESTORE_SUPERVISORS));
    console.log(
      `restore-all, ${restore.supervisors} supervisors (2 running tasks, 2 pending questions each): a new daemon's start() ${restore.runtimeMs.toFixed(0)} ms (Node CPU ${restore.runtimeCpuMs.toFixed(0)} ms) ` +
        `vs ${restore.floorMs.toFixed(0)} ms to read the rows and start an actor from each: ${(restore.floorMs / restore.runtimeMs).toFixed(2)}× the floor; ` +
        `with one raw UPSERT per supervisor added (the write a restoration records) ${restore.floorWithWriteMs.toFixed(0)} ms: ${(restore.floorWithWriteMs / restore.runtimeMs).toFixed(2)}×`,
    );
  }

  const transport = runs('delivery') ? await target.transport() : null;
  if (transport) {
    try {
      const delivery = await section(target, ({ database }) => measureQuestionDelivery(database, transport.transport, QUESTIONS));
      console.log(
        `question asked → delivered on ${transport.label}, ${delivery.questions} one at a time: p50 ${delivery.runtimeP50Ms.toFixed(2)} ms (p99 ${delivery.runtimeP99Ms.toFixed(2)}) ` +
          `vs commit + publish p50 ${delivery.floorP50Ms.toFixed(2)} ms (p99 ${delivery.floorP99Ms.toFixed(2)}): ${(delivery.floorP50Ms / delivery.runtimeP50Ms).toFixed(2)}× the floor`,
      );
    } finally {
      await transport.close();
    }
  } else if (runs('delivery')) {
    console.log(`question delivery: not measured, no NATS at ${NATS_URL} (set BENCH_NATS_URL)`);
  }

  if (runs('memory')) {
    const memory = await section(target, ({ database }) => measureIdleMemory(database, IDLE_SUPERVISORS));
    console.log(
      memory
        ? `memory per idle supervisor (${memory.supervisors} spawned, heap after gc): ${(memory.bytesPerSupervisor / 1024).toFixed(1)} KB`
        : 'memory per idle supervisor: not measured (run node with --expose-gc)',
    );
  }

  if (runs('flatness')) {
    const flat = await section(target, ({ database }) => measureFlatness(database, FLAT_ROUNDS));
    console.log(
      `long-lived supervisor, ${flat.rounds} rounds of ask, answer, spawn, complete: save point ${flat.earlyMs.toFixed(2)} ms at rounds 10–19, ` +
        `${flat.lateMs.toFixed(2)} ms at the last ten (${((flat.lateMs / flat.earlyMs - 1) * 100).toFixed(0)} %); snapshot ${flat.earlySnapshotBytes} B → ${flat.lateSnapshotBytes} B`,
    );
  }

  if (target.name === 'postgres' && runs('wal')) {
    const wal = await section(target, ({ database, pool }) => measureWal(database, pool!, WAL_SAVES));
    console.log(
        `WAL per save point (${wal.saves} of one supervisor): full save ${wal.fullSaveBytes.toFixed(0)} B vs raw UPSERT ${wal.rawUpsertBytes.toFixed(0)} B ` +
          `(${(wal.fullSaveBytes / wal.rawUpsertBytes).toFixed(2)}×); HOT row updates ${(wal.hotShare * 100).toFixed(0)} %`,
    );
  }

  if (target.name === 'postgres' && runs('statements')) {
    const costs = await section(target, async ({ database }) => {
      const opened: Database[] = [];
      const clients: pg.Client[] = [];
      try {
        return await measureStatementCost(
          async () => {
            const single = await openDatabase({ databaseUrl: DATABASE_URL, ...(database.schema ? { schema: database.schema } : {}), poolSize: 1 });
            opened.push(single);
            return single.db;
          },
          async () => {
            const client = new pg.Client({ connectionString: DATABASE_URL, ...(database.schema ? { options: `-c search_path=${database.schema}` } : {}) });
            clients.push(client);
            await client.connect();
            return client;
          },
        );
      } finally {
        for (const client of clients) await client.end();
        for (const single of opened) await single.close();
      }
    });
    const base = costs[0];
    console.log('one supervisor, one save at a time, each on its own connection (server CPU read from /proc of its backend):');
    for (const cost of costs) {
      const server = cost.serverCpuUs === null ? 'server CPU not readable here' : `server CPU ${cost.serverCpuUs.toFixed(0)} µs`;
      const ratio = base && cost !== base ? ` (${(base.wallUs / cost.wallUs).toFixed(2)}× raw)` : '';
      console.log(`  ${cost.name}: ${cost.wallUs.toFixed(0)} µs per save${ratio}, ${server}, client CPU ${cost.clientCpuUs.toFixed(0)} µs`);
    }
  }
}

async function main(): Promise<void> {
  if (!Number.isFinite(SECONDS) || SECONDS <= 0) throw new Error(`BENCH_SECONDS must be a positive number of seconds (got "${process.env.BENCH_SECONDS}")`);
  const unknownSections = [...SECTIONS].filter((name) => !(SECTION_NAMES as readonly string[]).includes(name));
  if (unknownSections.length > 0) throw new Error(`BENCH_SECTIONS names ${unknownSections.join(', ')}: use any of ${SECTION_NAMES.join(', ')}`);
  const unknown = TARGETS.filter((name) => name !== 'postgres' && name !== 'pglite');
  if (unknown.length > 0) throw new Error(`BENCH_TARGETS names ${unknown.join(', ')}: use postgres, pglite or both`);
  const cpu = cpus();
  console.log(`machine: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}, node ${process.version}`);
  for (const name of TARGETS) {
    const target = name === 'postgres' ? postgresTarget() : pgliteTarget();
    try {
      await measureTarget(target);
    } finally {
      await target.close();
    }
  }
  console.log(`\nload average at the end: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
