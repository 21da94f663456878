// Where a full save point's time goes on the server (Postgres on this machine only): one supervisor's saves one at a
// time, each variant on its own connection, with the CPU its backend used read from /proc. Variants: the raw UPSERT,
// the full save point as the runtime sends it, and the same two tuples (row update + checkpoint insert) written by a
// two-line statement, once on the runtime's tables and once on two bare tables with no constraints or extra indexes.

import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { supervisorMachine } from '../src/machines/supervisor-machine.js';
import type { DatabaseSchema } from '../src/persistence/schema.js';
import { saveSupervisorStateFull } from '../src/persistence/supervisor-repository.js';
import { fullSaveFor, RAW_UPSERT_SQL, realisticSnapshot } from './save-points.js';

export interface StatementCost {
  name: string;
  wallUs: number;
  /** CPU of the backend per op (null when /proc of the server is not readable here). */
  serverCpuUs: number | null;
  clientCpuUs: number;
}

/** One variant: a single-connection executor, the statement it runs per op, and its backend's pid. */
interface Variant {
  name: string;
  pid: number;
  op(): Promise<unknown>;
}

const TICKS_PER_SECOND = 100;

async function backendCpuUs(pid: number): Promise<number | null> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
  } catch {
    return null;
  }
}

async function pidOf(db: Kysely<DatabaseSchema>): Promise<number> {
  return (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;
}

/**
 * `connection()` hands out executors of one connection each and `rawClient` a connected pg client (both on the bench
 * schema). Rounds of `opsPerRound` ops run each variant in turn, so the machine's noise falls on all alike; the first
 * two rounds warm up.
 */
export async function measureStatementCost(
  connection: () => Promise<Kysely<DatabaseSchema>>,
  rawClient: () => Promise<pg.Client>,
  rounds = 12,
  opsPerRound = 200,
): Promise<StatementCost[]> {
  const doc = JSON.stringify(supervisorMachine.getPersistedSnapshot(realisticSnapshot()));
  const variants: Variant[] = [];

  // The baseline as the save-point rows send it: straight through pg, unnamed, with its two parameters.
  const raw = await rawClient();
  const rawId = '00000000-0000-4000-8000-00000000b001';
  const rawPid = (await raw.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  variants.push({ name: 'raw jsonb UPSERT', pid: rawPid, op: () => raw.query(RAW_UPSERT_SQL, [rawId, doc]) });

  const full = await connection();
  const fullChain = { snapshot: realisticSnapshot(), step: 1 };
  await saveSupervisorStateFull(full, fullSaveFor(fullChain.snapshot, fullChain.step));
  variants.push({ name: 'full save point (saveSupervisorStateFull)', pid: await pidOf(full), op: () => saveSupervisorStateFull(full, fullSaveFor(fullChain.snapshot, ++fullChain.step)) });

  const plain = await connection();
  const plainSnapshot = realisticSnapshot();
  await saveSupervisorStateFull(plain, fullSaveFor(plainSnapshot, 1));
  const plainId = plainSnapshot.context.supervisorId;
  variants.push({
    name: 'row update + checkpoint insert, two-line statement, runtime tables',
    pid: await pidOf(plain),
    op: () =>
      sql`/* sr:bench_two_tuples */
        WITH u AS (UPDATE supervisor_states SET step = step + 1, checkpoint_seq = checkpoint_seq + 1, updated_at = now() WHERE id = ${plainId}
          RETURNING id, checkpoint_seq, step, state, machine_version)
        INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
        SELECT id, checkpoint_seq, step, 'bench', state, ${doc}::jsonb, machine_version FROM u RETURNING supervisor_id, seq`.execute(plain),
  });

  const bare = await connection();
  await sql`CREATE TABLE bench_bare_row (id uuid PRIMARY KEY, step bigint NOT NULL, updated_at timestamptz NOT NULL) WITH (fillfactor = 70)`.execute(bare);
  await sql`CREATE TABLE bench_bare_checkpoint (id uuid, step bigint, snapshot jsonb, PRIMARY KEY (id, step))`.execute(bare);
  await sql`INSERT INTO bench_bare_row VALUES (${rawId}, 0, now())`.execute(bare);
  variants.push({
    name: 'the same two tuples on two bare tables',
    pid: await pidOf(bare),
    op: () =>
      sql`/* sr:bench_bare_tuples */
        WITH u AS (UPDATE bench_bare_row SET step = step + 1, updated_at = now() WHERE id = ${rawId} RETURNING id, step)
        INSERT INTO bench_bare_checkpoint SELECT id, step, ${doc}::jsonb FROM u`.execute(bare),
  });

  const totals = variants.map(() => ({ wallMs: 0, serverUs: 0 as number | null, clientMs: 0, ops: 0 }));
  for (let round = 0; round < rounds; round++) {
    for (const [index, variant] of variants.entries()) {
      const serverBefore = await backendCpuUs(variant.pid);
      const clientBefore = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < opsPerRound; i++) await variant.op();
      const wallMs = performance.now() - started;
      const client = process.cpuUsage(clientBefore);
      const serverAfter = await backendCpuUs(variant.pid);
      const total = totals[index]!;
      if (round < 2) continue;
      total.wallMs += wallMs;
      total.clientMs += (client.user + client.system) / 1000;
      total.serverUs = total.serverUs === null || serverBefore === null || serverAfter === null ? null : total.serverUs + (serverAfter - serverBefore);
      total.ops += opsPerRound;
    }
  }
  return variants.map((variant, index) => {
    const total = totals[index]!;
    return {
      name: variant.name,
      wallUs: (total.wallMs * 1000) / total.ops,
      serverCpuUs: total.serverUs === null ? null : total.serverUs / total.ops,
      clientCpuUs: (total.clientMs * 1000) / total.ops,
    };
  });
}
