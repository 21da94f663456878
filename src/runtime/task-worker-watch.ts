// Watches whether anyone takes the tasks supervisors hand to workers on tasks.spawn. Without a worker a supervisor
// waits in waiting_for_tasks forever and nothing says why; this says it once (log), keeps saying it (metric, a
// warning in the registry that the dashboard shows as a badge), and says when it clears.

import { errorText } from '../domain/errors.js';
import { taskSpawnSubject } from '../transport/subjects.js';
import type { ConsumerInfo, Transport } from '../transport/transport.js';
import type { Logger } from './logger.js';
import type { RegistryStore } from './registry.js';
import { TASK_WORKERS_DURABLE } from './task-worker.js';

export const NO_TASK_WORKER_WARNING = 'no-task-worker';

export interface TaskWorkerWatchOptions {
  /** How often to read the workers' consumer (default 5 s; 0 turns the watch off). */
  intervalMs?: number;
  /** How long tasks must wait with nobody taking them before the warning (default 30 s). */
  graceMs?: number;
  /** The workers' durable consumer (default `task-workers`, what `supervisor-runtime worker` uses). */
  durable?: string;
}

export interface TaskWorkerWatchStats {
  /** Tasks on tasks.spawn no worker has taken yet, at the last reading (null before the first, or when it failed). */
  waitingTasks: number | null;
  /** Tasks handed to a worker and not yet acknowledged. */
  tasksInProgress: number | null;
  /** True while the warning is raised. */
  noWorker: boolean;
  /** When tasks started waiting with nobody taking them, while they do. */
  starvedSince: string | null;
}

export interface TaskWorkerWatch {
  stats(): TaskWorkerWatchStats;
  /** Read the consumer now (the background rounds do this too). */
  check(): Promise<void>;
  stop(): Promise<void>;
}

interface WatchHost {
  transport: Transport;
  registry: RegistryStore;
  logger: Logger;
  now(): Date;
}

/**
 * Nobody is taking work: supervisors here have running tasks, spawn messages wait, no subscriber asks for more, and
 * nothing is being worked on. (Tasks whose outcome came over HTTP leave their spawn message behind; without running
 * tasks that is no reason to warn.)
 */
function starved(info: ConsumerInfo, runningTasks: number): boolean {
  return runningTasks > 0 && info.pending > 0 && info.waiting === 0 && info.ackPending === 0;
}

function runningTasksHere(registry: RegistryStore): number {
  let running = 0;
  for (const entry of Object.values(registry.getSnapshot().context.supervisors)) running += entry.runningTaskCount;
  return running;
}

export function startTaskWorkerWatch(host: WatchHost, options: TaskWorkerWatchOptions = {}): TaskWorkerWatch {
  const intervalMs = options.intervalMs ?? 5_000;
  const graceMs = options.graceMs ?? 30_000;
  const durable = options.durable ?? TASK_WORKERS_DURABLE;
  const subject = taskSpawnSubject(host.transport.subjectPrefix);
  const state: TaskWorkerWatchStats = { waitingTasks: null, tasksInProgress: null, noWorker: false, starvedSince: null };
  let readFailedLogged = false;
  let running: Promise<void> | null = null;
  let stopped = false;

  async function read(): Promise<void> {
    let info: ConsumerInfo;
    try {
      info = await host.transport.consumerInfo(durable, subject);
      readFailedLogged = false;
    } catch (error) {
      // The transport being away is its own health problem (GET /healthz says so); keep the last verdict.
      state.waitingTasks = null;
      state.tasksInProgress = null;
      if (!readFailedLogged) host.logger.debug({ durable, err: errorText(error) }, 'could not read the task workers\' consumer');
      readFailedLogged = true;
      return;
    }
    state.waitingTasks = info.pending;
    state.tasksInProgress = info.ackPending;
    const now = host.now();
    const runningTasks = runningTasksHere(host.registry);
    if (!starved(info, runningTasks)) {
      state.starvedSince = null;
      if (state.noWorker) {
        state.noWorker = false;
        host.registry.trigger.clearWarning({ key: NO_TASK_WORKER_WARNING });
        host.logger.info({ durable, subject, waitingTasks: info.pending, tasksInProgress: info.ackPending }, 'task workers are taking tasks again');
      }
      return;
    }
    state.starvedSince ??= now.toISOString();
    const waitedMs = now.getTime() - Date.parse(state.starvedSince);
    if (waitedMs < graceMs) return;
    const message =
      `${runningTasks} task(s) are running with no worker: ${info.pending} spawn message(s) wait on ${subject} and no worker takes them` +
      (info.exists ? '' : ' (no worker has ever subscribed)') +
      `: start one with \`supervisor-runtime worker\` (same NATS_URL and prefix), or report the tasks' outcomes with POST /tasks/:taskId/events.`;
    host.registry.trigger.warn({ key: NO_TASK_WORKER_WARNING, message, since: state.starvedSince, detail: { runningTasks, waitingTasks: info.pending, subject, durable } });
    if (!state.noWorker) {
      state.noWorker = true;
      host.logger.warn({ durable, subject, waitingTasks: info.pending, waitingSinceMs: waitedMs }, message);
    }
  }

  function check(): Promise<void> {
    running ??= read().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = intervalMs > 0 ? setInterval(() => void check(), intervalMs) : undefined;
  timer?.unref();
  if (intervalMs > 0) void check();

  return {
    stats: () => ({ ...state }),
    check,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      if (state.noWorker) host.registry.trigger.clearWarning({ key: NO_TASK_WORKER_WARNING });
    },
  };
}
