// Prometheus metrics of one runtime (prom-client, a registry of its own): save points as they commit, and at scrape
// time the supervisors by state, the outbox backlog, inbound messages, dead letters, leases and group commit.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import { SUPERVISOR_STATES } from '../domain/supervisor-state.js';
import type { Database } from '../persistence/database.js';
import type { DurableSupervisor } from './durable-supervisor.js';
import type { RuntimeHooks } from './runtime-host.js';
import type { RuntimeStats } from './supervisor-runtime.js';

export interface RuntimeMetrics {
  /** The exposition text and its content type, as GET /metrics answers. */
  scrape(): Promise<{ contentType: string; text: string }>;
}

export interface MetricsSources {
  database: Database;
  hooks: RuntimeHooks;
  daemonId: string;
  running(): DurableSupervisor[];
  stats(): RuntimeStats;
}

const PREFIX = 'supervisor_runtime_';

/** A counter whose value another component keeps: set from that total at each scrape. */
function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  new Counter({
    name: PREFIX + name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

export function createRuntimeMetrics(sources: MetricsSources): RuntimeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ daemon: sources.daemonId });
  // Process metrics (CPU, memory, event-loop lag) start with the first scrape: they run a monitor of their own, which
  // a runtime nobody scrapes (a library user's, a test's) should not carry.
  let processMetrics = false;

  const saves = new Counter({ name: `${PREFIX}save_points_total`, help: 'Save points committed, by kind (full or heartbeat) and reason.', labelNames: ['kind', 'reason'], registers: [registry] });
  const saveSeconds = new Histogram({
    name: `${PREFIX}save_point_seconds`,
    help: 'Time from a step being computed to its save point committing, retries included.',
    labelNames: ['kind'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const restorations = new Counter({ name: `${PREFIX}restorations_total`, help: 'Restorations recorded (RESTORED save points), by source.', labelNames: ['source'], registers: [registry] });
  sources.hooks.onCommitted.push((_supervisor, step) => {
    saves.inc({ kind: step.kind, reason: step.reason });
    if (step.saveMs !== undefined) saveSeconds.observe({ kind: step.kind }, step.saveMs / 1000);
    if (step.event?.type === 'RESTORED') restorations.inc({ source: step.event.source });
  });

  new Gauge({
    name: `${PREFIX}supervisors`,
    help: 'Supervisors running in this daemon, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(SUPERVISOR_STATES.map((state) => [state, 0]));
      for (const supervisor of sources.running()) counts.set(supervisor.state, (counts.get(supervisor.state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  new Gauge({
    name: `${PREFIX}supervisors_degraded`,
    help: 'Supervisors interrupted by a database outage whose interruption is not saved yet.',
    registers: [registry],
    collect() {
      this.set(sources.running().filter((supervisor) => supervisor.degraded).length);
    },
  });

  // The outbox and dead letters are read from the database at scrape time (one small query each).
  const outboxUnsent = new Gauge({ name: `${PREFIX}outbox_unsent`, help: 'Outbox rows not yet published (every daemon\'s).', registers: [registry] });
  const outboxAge = new Gauge({ name: `${PREFIX}outbox_oldest_unsent_seconds`, help: 'Age of the oldest unpublished outbox row; 0 when none.', registers: [registry] });
  const deadLetters = new Gauge({ name: `${PREFIX}dead_letters`, help: 'Inbound messages kept as dead letters (terminated as unusable).', registers: [registry] });
  const databaseUp = new Gauge({ name: `${PREFIX}database_up`, help: '1 when the scrape could read the database, 0 when not.', registers: [registry] });

  const stat = <T>(pick: (stats: RuntimeStats) => T) => pick(sources.stats());
  mirroredCounter(registry, 'outbox_published_total', 'Outbox rows this daemon published (new to the transport).', [], () => [[{}, stat((s) => s.relay?.published ?? 0)]]);
  mirroredCounter(registry, 'outbox_duplicates_total', 'Outbox rows this daemon published that the transport had already seen.', [], () => [[{}, stat((s) => s.relay?.duplicates ?? 0)]]);
  mirroredCounter(registry, 'outbox_failures_total', 'Relay attempts that failed (transport or database down).', [], () => [[{}, stat((s) => s.relay?.failures ?? 0)]]);
  const INBOUND_LABELS = { answers: 'answer', taskEvents: 'task_event', messages: 'message' } as const;
  mirroredCounter(registry, 'inbound_messages_total', 'Inbound answers, task events and messages between supervisors, by what became of them.', ['kind', 'outcome'], () => {
    const inbound = stat((s) => s.inbound);
    if (!inbound) return [];
    return (['answers', 'taskEvents', 'messages'] as const).flatMap((kind) =>
      Object.entries(inbound[kind]).map(([outcome, value]): [Record<string, string>, number] => [{ kind: INBOUND_LABELS[kind], outcome }, value]),
    );
  });
  mirroredCounter(registry, 'save_statements_total', 'Statements sent by group commit, by what they carried.', ['kind'], () => {
    const batch = stat((s) => s.saves);
    return [
      [{ kind: 'full' }, batch.saveStatements],
      [{ kind: 'heartbeat' }, batch.heartbeatStatements],
    ];
  });
  mirroredCounter(registry, 'checkpoints_pruned_total', 'Checkpoints deleted by retention.', [], () => [[{}, stat((s) => s.checkpoints.deleted)]]);
  mirroredCounter(registry, 'lease_renewal_failures_total', 'Membership lease renewals that failed.', [], () => [[{}, stat((s) => s.leases.renewalFailures)]]);
  mirroredCounter(registry, 'supervisors_claimed_total', 'Supervisors this daemon claimed (start-up and takeovers).', [], () => [[{}, stat((s) => s.leases.claimed)]]);
  mirroredCounter(registry, 'supervisors_lost_total', 'Supervisors another daemon claimed from this one.', [], () => [[{}, stat((s) => s.leases.lost)]]);
  new Gauge({
    name: `${PREFIX}save_points_waiting`,
    help: 'Save points and heartbeats queued behind the group-commit statements in flight.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const batch = stat((s) => s.saves);
      this.set({ kind: 'full' }, batch.savesWaiting);
      this.set({ kind: 'heartbeat' }, batch.heartbeatsWaiting);
    },
  });
  new Gauge({
    name: `${PREFIX}lease_joined`,
    help: '1 while this daemon holds its membership lease.',
    registers: [registry],
    collect() {
      this.set(stat((s) => (s.leases.joined ? 1 : 0)));
    },
  });

  new Gauge({
    name: `${PREFIX}task_workers_missing`,
    help: '1 while tasks wait on tasks.spawn and no worker takes them (past the grace period); 0 otherwise.',
    registers: [registry],
    collect() {
      this.set(stat((s) => (s.taskWorkers?.noWorker ? 1 : 0)));
    },
  });
  new Gauge({
    name: `${PREFIX}tasks_waiting_for_worker`,
    help: 'Tasks on tasks.spawn that no worker has taken yet, at the last reading.',
    registers: [registry],
    collect() {
      this.set(stat((s) => s.taskWorkers?.waitingTasks ?? 0));
    },
  });

  async function readDatabase(): Promise<void> {
    try {
      const row = (
        await sql<{ unsent: string | number; oldest: string | number | null; dead: string | number }>`
          SELECT (SELECT count(*) FROM supervisor_outbox WHERE sent_at IS NULL) AS unsent,
                 (SELECT extract(epoch FROM now() - min(created_at)) FROM supervisor_outbox WHERE sent_at IS NULL) AS oldest,
                 (SELECT count(*) FROM supervisor_dead_letters) AS dead`.execute(sources.database.db)
      ).rows[0];
      outboxUnsent.set(Number(row?.unsent ?? 0));
      outboxAge.set(Number(row?.oldest ?? 0));
      deadLetters.set(Number(row?.dead ?? 0));
      databaseUp.set(1);
    } catch {
      // A scrape during an outage still answers, and says so.
      databaseUp.set(0);
    }
  }

  return {
    async scrape() {
      if (!processMetrics) {
        processMetrics = true;
        collectDefaultMetrics({ register: registry, prefix: PREFIX });
      }
      await readDatabase();
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
  };
}
