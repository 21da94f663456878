// The benchmark's scenarios: full save points through the repository, the same bytes as a raw jsonb UPSERT through
// pg, and save points through the whole runtime path (transition, save plan, commit, visibility).

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { initialTransition, transition } from 'xstate';
import type { SupervisorState } from '../src/domain/supervisor-state.js';
import { SUPERVISOR_MACHINE_VERSION, supervisorMachine, type SupervisorSnapshot } from '../src/machines/supervisor-machine.js';
import type { SupervisorEvent } from '../src/machines/supervisor-types.js';
import type { Database } from '../src/persistence/database.js';
import type { DatabaseSchema } from '../src/persistence/schema.js';
import { saveSupervisorStateFull, type FullSaveInput } from '../src/persistence/supervisor-repository.js';
import type { DurableSupervisor } from '../src/runtime/durable-supervisor.js';
import { createSaveBatcher } from '../src/runtime/save-batcher.js';
import { fullSaveInput } from '../src/runtime/save-plan.js';
import { createRuntime } from '../src/runtime/supervisor-runtime.js';
import type { Scenario } from './measure.js';

/** The events that take a fresh supervisor to 2 running tasks and 2 pending questions, with LLM-sized texts. */
export function realisticEvents(at: () => string): SupervisorEvent[] {
  return [
    { type: 'START', at: at() },
    {
      type: 'SET_ACTIVITY',
      activity:
        'reading the issue, the failing CI run and the module layout of src/persistence to plan the migration of the checkpoint table without downtime',
      progress: 15,
      at: at(),
    },
    {
      type: 'SPAWN_TASK',
      taskId: randomUUID(),
      description:
        'Index the repository and summarise the module boundaries, listing every caller of the supervisor repository, the SQL each one runs and the migrations it depends on.',
      at: at(),
    },
    {
      type: 'SPAWN_TASK',
      taskId: randomUUID(),
      description:
        'Run the whole test suite on Postgres and PGlite, collect the failing specifications, group them by the migration they depend on and attach the first failing assertion of each.',
      at: at(),
    },
    {
      type: 'ASK_QUESTION',
      questionId: randomUUID(),
      question: 'Should the migration keep the old column until the next release, or drop it now?',
      choices: ['keep until next release', 'drop now'],
      context:
        'Two services still read the old column; one of them is deployed weekly, the other only after a manual approval by the on-call engineer, so dropping it now means coordinating both releases.',
      at: at(),
    },
    {
      type: 'ASK_QUESTION',
      questionId: randomUUID(),
      question: 'Who reviews the implementation plan before the work starts, and is a written design note required?',
      context:
        'The last two plans were reviewed by the platform team; this one touches the billing export as well, which finance owns and which runs nightly, so a reviewer from finance may be needed before the export job is changed.',
      at: at(),
    },
  ];
}

/** A real supervisor's snapshot with 2 tasks and 2 questions, as the runtime computes it. */
export function realisticSnapshot(supervisorId: string = randomUUID()): SupervisorSnapshot {
  let minute = 0;
  const at = () => new Date(Date.UTC(2026, 0, 1, 9, minute++)).toISOString();
  const [initial] = initialTransition(supervisorMachine, { supervisorId, name: 'release planner', createdAt: at() });
  return realisticEvents(at).reduce((snapshot, event) => transition(supervisorMachine, snapshot, event)[0], initial);
}

export function persistedSnapshotBytes(): number {
  return Buffer.byteLength(JSON.stringify(supervisorMachine.getPersistedSnapshot(realisticSnapshot())));
}

/** What the runtime hands saveSupervisorStateFull for that snapshot: the runtime's own save plan (fenced), with no effects. */
export function fullSaveFor(snapshot: SupervisorSnapshot, step: number): FullSaveInput {
  return fullSaveInput({
    snapshot,
    persisted: supervisorMachine.getPersistedSnapshot(snapshot),
    machineVersion: SUPERVISOR_MACHINE_VERSION,
    step,
    reason: 'bench',
    effects: [],
    previousState: snapshot.value as SupervisorState,
    subjectPrefix: '',
    driver: null,
    // Fenced like every runtime write: the row must name this owner at this epoch.
    owner: 'bench-daemon',
    epoch: 1,
    at: snapshot.context.createdAt,
  });
}

/** Each chain is one supervisor saving its next step, over and over, through the repository function the runtime uses. */
export async function fullSaveScenario(name: string, db: Kysely<DatabaseSchema>, workers: number): Promise<Scenario> {
  const chains = Array.from({ length: workers }, () => ({ snapshot: realisticSnapshot(), step: 1 }));
  for (const chain of chains) await saveSupervisorStateFull(db, fullSaveFor(chain.snapshot, chain.step));
  return {
    name,
    workers,
    async op(worker) {
      const chain = chains[worker];
      if (!chain) throw new Error(`no chain ${worker}`);
      chain.step += 1;
      await saveSupervisorStateFull(db, fullSaveFor(chain.snapshot, chain.step));
    },
    close: async () => undefined,
  };
}

/**
 * Group commit at the repository level, like the full save rows: each chain is one supervisor handing its next save
 * point to the runtime's save batcher, which commits the save points waiting together in one statement.
 */
export async function groupSaveScenario(name: string, database: Database, supervisors: number): Promise<Scenario> {
  const batcher = createSaveBatcher(database);
  const chains = Array.from({ length: supervisors }, () => ({ snapshot: realisticSnapshot(), step: 1 }));
  await Promise.all(chains.map((chain) => batcher.save(fullSaveFor(chain.snapshot, chain.step))));
  return {
    name,
    workers: supervisors,
    async op(worker) {
      const chain = chains[worker];
      if (!chain) throw new Error(`no chain ${worker}`);
      chain.step += 1;
      await batcher.save(fullSaveFor(chain.snapshot, chain.step));
    },
    close: async () => undefined,
  };
}

/** One parameterised statement straight to the database driver (pg's pool, or PGlite's query), bypassing kysely. */
export type RawQuery = (text: string, parameters: unknown[]) => Promise<unknown>;

export const RAW_TABLE_SQL = 'CREATE TABLE IF NOT EXISTS bench_raw (id text PRIMARY KEY, doc jsonb NOT NULL)';
export const RAW_UPSERT_SQL = 'INSERT INTO bench_raw (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc';

/** The baseline: one single-row jsonb UPSERT of the same persisted snapshot per op, straight through the driver. */
export function rawUpsertScenario(name: string, query: RawQuery, workers: number): Scenario {
  const docs = Array.from({ length: workers }, () => JSON.stringify(supervisorMachine.getPersistedSnapshot(realisticSnapshot())));
  const ids = Array.from({ length: workers }, () => randomUUID());
  return {
    name,
    workers,
    async op(worker) {
      await query(RAW_UPSERT_SQL, [ids[worker], docs[worker]]);
    },
    close: async () => undefined,
  };
}

/** Full save points through the runtime: DurableSupervisor.send of SET_PHASE, alternating between two phases. */
export async function runtimeScenario(name: string, database: Database, workers: number): Promise<Scenario> {
  const runtime = createRuntime({ database, heartbeatIntervalMs: 0 });
  // Set up side by side (group commit takes them together); each supervisor's own steps stay in order.
  const supervisors: DurableSupervisor[] = await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      const supervisor = await runtime.spawn({ name: `bench ${i}`, start: false });
      for (const event of realisticEvents(() => new Date().toISOString())) await supervisor.send(event);
      return supervisor;
    }),
  );
  const sent = supervisors.map(() => 0);
  return {
    name,
    workers,
    async op(worker) {
      const supervisor = supervisors[worker];
      if (!supervisor) throw new Error(`no supervisor ${worker}`);
      const n = (sent[worker] = (sent[worker] ?? 0) + 1);
      const committed = await supervisor.send({ type: 'SET_PHASE', phase: n % 2 === 0 ? 'design' : 'build', at: new Date().toISOString() });
      if (committed.kind !== 'full') throw new Error(`expected a full save point, got ${committed.kind}`);
    },
    close: () => runtime.shutdown({ closeDatabase: false }),
  };
}
