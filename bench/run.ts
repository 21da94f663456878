// Save point throughput on the real Postgres: full save points vs a raw jsonb UPSERT of the same snapshot, at 1 and 8
// concurrent supervisors, plus the whole runtime path. `npm run bench`; env: BENCH_SECONDS (per scenario, default 5),
// BENCH_DATABASE_URL or DATABASE_URL, BENCH_INVESTIGATE=1 (extra rows that show where a full save's time goes).

import { cpus, loadavg } from 'node:os';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { openDatabase, redactDatabaseUrl, type Database } from '../src/persistence/database.js';
import { migrateOrThrow } from '../src/persistence/migrator.js';
import type { DatabaseSchema } from '../src/persistence/schema.js';
import { measureInterleaved, type Measurement, type Scenario } from './measure.js';
import { preparedStatementDialect } from './prepared-statement-dialect.js';
import { measureHeartbeats, measureIdleMemory } from './fleet.js';
import { fullSaveScenario, persistedSnapshotBytes, RAW_TABLE_SQL, rawUpsertScenario, runtimeScenario } from './save-points.js';

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const INVESTIGATE = process.env.BENCH_INVESTIGATE === '1';
const CONCURRENCY = [1, 8] as const;
/** Supervisors saving at once for the group-commit figure, compared with the raw UPSERT at 8 clients. */
const GROUP_SUPERVISORS = Number(process.env.BENCH_GROUP_SUPERVISORS ?? 1_000);
const HEARTBEAT_SUPERVISORS = Number(process.env.BENCH_HEARTBEAT_SUPERVISORS ?? 10_000);
const IDLE_SUPERVISORS = Number(process.env.BENCH_IDLE_SUPERVISORS ?? 2_000);
/** The goal from the issue: a full save point sustains at least this fraction of the raw UPSERT's throughput. */
const GOAL = 0.9;
const WARMUP_MS = 1_000;
/** Each scenario's measured time is split into this many rounds, taken in turn with the scenarios it is compared to. */
const ROUNDS = 5;

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

async function main(): Promise<void> {
  if (!Number.isFinite(SECONDS) || SECONDS <= 0) throw new Error(`BENCH_SECONDS must be a positive number of seconds (got "${process.env.BENCH_SECONDS}")`);
  const schema = `bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  // 8 chains need 8 connections: every pool here holds up to 8.
  const database: Database = await openDatabase({ databaseUrl: DATABASE_URL, schema, poolSize: 8 });
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8, options: `-c search_path=${schema}` });
  const preparedPool = new pg.Pool({ connectionString: DATABASE_URL, max: 8, options: `-c search_path=${schema}` });
  const prepared = new Kysely<DatabaseSchema>({ dialect: preparedStatementDialect(preparedPool) });
  try {
    await migrateOrThrow(database);
    await pool.query(RAW_TABLE_SQL);
    const server = await sql<{ version: string; synchronous_commit: string }>`
      SELECT version() AS version, current_setting('synchronous_commit') AS synchronous_commit`.execute(database.db);
    const cpu = cpus();
    console.log(`machine:  ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}, node ${process.version}`);
    console.log(`postgres: ${server.rows[0]?.version ?? 'unknown'} (synchronous_commit=${server.rows[0]?.synchronous_commit ?? '?'})`);
    console.log(`database: ${redactDatabaseUrl(DATABASE_URL)}, schema ${schema} (dropped afterwards)`);
    console.log(
      `method:   persisted snapshot of ${persistedSnapshotBytes()} bytes (2 tasks, 2 questions); per scenario ${WARMUP_MS / 1000} s warm-up, ` +
        `then ${SECONDS} s measured in ${ROUNDS} rounds interleaved with the scenarios of the same concurrency\n`,
    );

    const rows: Row[] = [];
    for (const workers of CONCURRENCY) {
      const label = workers === 1 ? '1 supervisor' : `${workers} supervisors`;
      const scenarios: Scenario[] = [
        rawUpsertScenario(`raw jsonb UPSERT (pg), ${workers} client${workers === 1 ? '' : 's'}`, pool, workers),
        await fullSaveScenario(`full save point, ${label}`, database.db, workers),
        await runtimeScenario(`runtime send SET_PHASE (full save), ${label}`, database, workers),
      ];
      if (INVESTIGATE) scenarios.push(await fullSaveScenario(`  investigate: full save, prepared statement, ${label}`, prepared, workers));
      try {
        const measurements = await measureInterleaved(scenarios, { warmupMs: WARMUP_MS, rounds: ROUNDS, roundMs: (SECONDS * 1000) / ROUNDS });
        const [raw] = measurements;
        measurements.forEach((measurement, index) => {
          rows.push({ scenario: scenarios[index]?.name ?? '?', measurement, baseline: index === 0 ? null : (raw ?? null) });
        });
      } finally {
        for (const scenario of scenarios) await scenario.close();
      }
    }
    {
      const scenarios: Scenario[] = [
        rawUpsertScenario('raw jsonb UPSERT (pg), 8 clients', pool, 8),
        await runtimeScenario(`runtime send SET_PHASE, ${GROUP_SUPERVISORS} supervisors (group commit)`, database, GROUP_SUPERVISORS),
      ];
      try {
        const measurements = await measureInterleaved(scenarios, { warmupMs: WARMUP_MS, rounds: ROUNDS, roundMs: (SECONDS * 1000) / ROUNDS });
        measurements.forEach((measurement, index) => rows.push({ scenario: scenarios[index]?.name ?? '?', measurement, baseline: index === 0 ? null : (measurements[0] ?? null) }));
      } finally {
        for (const scenario of scenarios) await scenario.close();
      }
    }
    console.log(formatTable(rows));
    console.log('');
    const beats = await measureHeartbeats(database, pool, HEARTBEAT_SUPERVISORS, 15_000);
    console.log(
      `heartbeats, ${beats.supervisors} supervisors: one round ${beats.roundMs.toFixed(0)} ms (transitions ${beats.transitionsCpuMs.toFixed(0)} ms cpu, ` +
        `one batched statement ${beats.statementMs.toFixed(0)} ms) vs ${beats.rawUpdatesMs.toFixed(0)} ms for ${beats.supervisors} raw single-row UPDATEs on 8 connections ` +
        `(${(beats.rawUpdatesMs / beats.statementMs).toFixed(1)}× faster); node cpu every ${beats.intervalMs / 1000} s = ${(beats.coreShareAtInterval * 100).toFixed(2)} % of one core`,
    );
    const memory = await measureIdleMemory(database, IDLE_SUPERVISORS);
    console.log(
      memory
        ? `memory per idle supervisor (${memory.supervisors} spawned, heap after gc): ${(memory.bytesPerSupervisor / 1024).toFixed(1)} KB`
        : 'memory per idle supervisor: not measured (run node with --expose-gc)',
    );
    console.log('');
    for (const row of rows.filter((candidate) => candidate.scenario.startsWith('full save point'))) {
      const ratio = row.measurement.opsPerSecond / (row.baseline?.opsPerSecond ?? Number.NaN);
      console.log(`${row.scenario}: ${ratio.toFixed(2)}× raw, ${ratio >= GOAL ? 'meets' : 'MISSES'} the ${GOAL}× goal`);
    }
  } finally {
    await prepared.destroy();
    await preparedPool.end().catch(() => undefined);
    await pool.end();
    await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(database.db).catch((error: unknown) => {
      console.error(`could not drop schema ${schema}: ${error instanceof Error ? error.message : String(error)}`);
    });
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
