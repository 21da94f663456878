// Fleet-sized figures: heartbeats of 10,000 supervisors in one statement per round (vs 10,000 single-row UPDATEs
// through pg), and the memory an idle supervisor holds in a running daemon.

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { transition } from 'xstate';
import { supervisorMachine } from '../src/machines/supervisor-machine.js';
import type { Database } from '../src/persistence/database.js';
import { saveSupervisorStatesFull, updateSupervisorHeartbeats, type HeartbeatWrite } from '../src/persistence/supervisor-repository.js';
import { createRuntime } from '../src/runtime/supervisor-runtime.js';
import { fullSaveFor, realisticSnapshot, type RawQuery } from './save-points.js';

export interface HeartbeatFigures {
  supervisors: number;
  /** One round: every supervisor's HEARTBEAT transition, and the batched statement. */
  roundMs: number;
  transitionsCpuMs: number;
  statementMs: number;
  /** The same rows updated one statement each, 8 at a time (over 8 connections on Postgres; PGlite has one). */
  rawUpdatesMs: number;
  /** Node CPU of one round as a share of one core when rounds come every `intervalMs`. */
  coreShareAtInterval: number;
  intervalMs: number;
}

export async function measureHeartbeats(database: Database, query: RawQuery, count: number, intervalMs: number): Promise<HeartbeatFigures> {
  const owner = 'bench-daemon';
  const snapshot = realisticSnapshot();
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let i = 0; i < ids.length; i += 500) {
    const inputs = ids.slice(i, i + 500).map((id) => ({ ...fullSaveFor(realisticSnapshot(id), 1), supervisorId: id }));
    const outcomes = await saveSupervisorStatesFull(database.db, inputs);
    const failed = outcomes.find((outcome) => !outcome.ok);
    if (failed && !failed.ok) throw failed.error;
  }
  const round = async (n: number) => {
    const at = new Date(Date.UTC(2026, 0, 1, 10, 0, n)).toISOString();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const writes: HeartbeatWrite[] = ids.map((id) => {
      const [next] = transition(supervisorMachine, snapshot, { type: 'HEARTBEAT', at });
      return { supervisorId: id, fence: { owner, epoch: 1 }, at, currentActivity: next.context.currentActivity, progress: next.context.progress };
    });
    const transitionsCpu = process.cpuUsage(cpuBefore);
    const statementStarted = performance.now();
    const outcomes = await updateSupervisorHeartbeats(database.db, writes);
    if (outcomes.some((outcome) => !outcome.ok || !outcome.written)) throw new Error('a heartbeat was not written');
    const cpu = process.cpuUsage(cpuBefore);
    return {
      roundMs: performance.now() - started,
      statementMs: performance.now() - statementStarted,
      transitionsCpuMs: (transitionsCpu.user + transitionsCpu.system) / 1000,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  };
  await round(0);
  const rounds = [await round(1), await round(2), await round(3)];
  const mean = (pick: (r: (typeof rounds)[number]) => number) => rounds.reduce((sum, r) => sum + pick(r), 0) / rounds.length;
  // Baseline: the same rows, one UPDATE each, 8 at a time.
  const rawStarted = performance.now();
  let next = 0;
  const at = new Date().toISOString();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const id = ids[next++];
        await query('UPDATE supervisor_states SET last_heartbeat = $2 WHERE id = $1', [id, at]);
      }
    }),
  );
  const rawUpdatesMs = performance.now() - rawStarted;
  return {
    supervisors: count,
    roundMs: mean((r) => r.roundMs),
    transitionsCpuMs: mean((r) => r.transitionsCpuMs),
    statementMs: mean((r) => r.statementMs),
    rawUpdatesMs,
    coreShareAtInterval: mean((r) => r.cpuMs) / intervalMs,
    intervalMs,
  };
}

/** Heap per idle supervisor in a runtime: spawn `count`, collect garbage, compare with the runtime alone. */
export async function measureIdleMemory(database: Database, count: number): Promise<{ supervisors: number; bytesPerSupervisor: number } | null> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  const runtime = createRuntime({ database, heartbeatIntervalMs: 15_000 });
  try {
    gc();
    const before = process.memoryUsage().heapUsed;
    await Promise.all(Array.from({ length: count }, (_, i) => runtime.spawn({ name: `idle ${i}` })));
    gc();
    const after = process.memoryUsage().heapUsed;
    return { supervisors: count, bytesPerSupervisor: (after - before) / count };
  } finally {
    await runtime.shutdown({ closeDatabase: false });
  }
}
