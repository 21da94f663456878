// Restore-all after a restart: N supervisors, each with 2 running tasks and 2 pending questions, brought back by a new
// daemon's start() (claim, validate, reconcile open work, re-deliver, RESTORED save point), against the floor: read the
// same rows with their current snapshots and start an actor from each, nothing else.

import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createActor } from 'xstate';
import { supervisorMachine } from '../src/machines/supervisor-machine.js';
import type { SupervisorContext } from '../src/machines/supervisor-types.js';
import type { Database } from '../src/persistence/database.js';
import { silentLogger } from '../src/runtime/logger.js';
import { createRuntime } from '../src/runtime/supervisor-runtime.js';
import { RAW_UPSERT_SQL, realisticEvents, type RawQuery } from './save-points.js';

export interface RestoreAllFigures {
  supervisors: number;
  /** A new daemon's start(): claim and restore every one of them. */
  runtimeMs: number;
  /** This process's CPU (user + system) during that start(): steadier than wall time on a busy machine. */
  runtimeCpuMs: number;
  restored: number;
  /** Reading the rows (joined with their current snapshot) and starting an actor from each. */
  floorMs: number;
  /** The same, plus the one write a restoration must make (it records itself): a raw UPSERT of each snapshot, 8 at a time. */
  floorWithWriteMs: number;
}

/** Spawn `count` supervisors with open work through a runtime, then stop it (it releases them, as on SIGTERM). */
async function populate(database: Database, count: number): Promise<void> {
  const runtime = createRuntime({ database, heartbeatIntervalMs: 0, logger: silentLogger });
  try {
    const batch = 500;
    for (let first = 0; first < count; first += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, count - first) }, async (_, i) => {
          const supervisor = await runtime.spawn({ name: `restore ${first + i}`, start: false });
          for (const event of realisticEvents(() => new Date().toISOString())) await supervisor.send(event);
        }),
      );
    }
  } finally {
    await runtime.shutdown({ closeDatabase: false });
  }
}

/** The floor: one read of every unfinished row with its current snapshot, and an actor started from each. */
async function readAndStart(database: Database, write: RawQuery | null): Promise<{ ms: number; started: number }> {
  const started = performance.now();
  const actors: Array<{ stop(): void }> = [];
  const docs: Array<[string, string]> = [];
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const page = await sql<{ id: string; state: string; snapshot: { context: SupervisorContext } }>`
      SELECT s.id, s.state::text AS state, c.snapshot FROM supervisor_states s
      JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq
      WHERE s.state NOT IN ('completed', 'failed') AND s.id > ${after}::uuid ORDER BY s.id LIMIT 1000`.execute(database.db);
    for (const row of page.rows) {
      const snapshot = supervisorMachine.resolveState({ value: row.state, context: row.snapshot.context });
      const actor = createActor(supervisorMachine, { snapshot: supervisorMachine.getPersistedSnapshot(snapshot) });
      actor.start();
      actors.push(actor);
      if (write) docs.push([row.id, JSON.stringify(actor.getPersistedSnapshot())]);
    }
    if (page.rows.length < 1000) break;
    after = page.rows.at(-1)!.id;
  }
  if (write) {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < docs.length) {
          const [id, doc] = docs[next++]!;
          await write(RAW_UPSERT_SQL, [id, doc]);
        }
      }),
    );
  }
  const ms = performance.now() - started;
  for (const actor of actors) actor.stop();
  return { ms, started: actors.length };
}

export async function measureRestoreAll(database: Database, query: RawQuery, count: number): Promise<RestoreAllFigures> {
  await populate(database, count);
  const floor = await readAndStart(database, null);
  const withWrite = await readAndStart(database, query);
  if (floor.started !== count) throw new Error(`the floor started ${floor.started} actors, expected ${count}`);
  const runtime = createRuntime({ database, heartbeatIntervalMs: 0, logger: silentLogger });
  try {
    const cpu = process.cpuUsage();
    const started = performance.now();
    const summary = await runtime.start({ messaging: false });
    const runtimeMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    if (summary.restored !== count) throw new Error(`restore-all restored ${summary.restored} of ${count} (failed: ${summary.failed.length})`);
    return { supervisors: count, runtimeMs, runtimeCpuMs: (used.user + used.system) / 1000, restored: summary.restored, floorMs: floor.ms, floorWithWriteMs: withWrite.ms };
  } finally {
    await runtime.shutdown({ closeDatabase: false });
  }
}
