// A sample task worker: takes task spawns off the transport, simulates the work, and reports progress and the outcome as task events.
//
// Event msgIds are derived from the task id (`<taskId>:progress:<n>`, `<taskId>:done`), so a spawn that is delivered again
// (the worker died, or its ack was lost) publishes nothing the transport has not already dropped as a duplicate.

import { errorText } from '../domain/errors.js';
import { encodeMessage, parseTaskSpawnMessage, type TaskEventMessage, type TaskSpawnMessage } from '../transport/messages.js';
import { taskEventsSubject, taskSpawnSubject } from '../transport/subjects.js';
import type { InboundMessage, Subscription, Transport } from '../transport/transport.js';
import { silentLogger, type Logger } from './logger.js';

export const TASK_WORKERS_DURABLE = 'task-workers';

export interface TaskWorkerOptions {
  transport: Transport;
  /** The prefix the runtime publishes spawns under (the transport's own prefix). */
  subjectPrefix: string;
  logger?: Logger;
  /** Shortest simulated task (default 300 ms). */
  minDurationMs?: number;
  /** Longest simulated task (default 1 500 ms). */
  maxDurationMs?: number;
  /** Share of tasks that fail, 0–1 (default 0). */
  failureRate?: number;
  /** Progress events before the outcome (default 2). */
  progressSteps?: number;
  /** Durable consumer shared by every worker, so each spawn goes to one of them (default `task-workers`). */
  durable?: string;
  /** Tasks worked on at once (default 16). */
  concurrency?: number;
  /** Redeliver a spawn whose worker went silent for this long (default 30 s). */
  ackWaitMs?: number;
  /** A spawn whose events could not be published comes back after this long (default 1 s). */
  retryDelayMs?: number;
  /** Source of randomness for durations and failures (default Math.random). */
  random?: () => number;
  /** Called once per task whose outcome was published. */
  onTaskFinished?: (report: TaskReport) => void;
}

export interface TaskReport {
  taskId: string;
  supervisorId: string;
  description: string;
  outcome: 'completed' | 'failed';
  durationMs: number;
  /** The outcome was already stored (a redelivered spawn): nothing new reached the supervisor. */
  duplicate: boolean;
}

export interface TaskWorkerStats {
  /** Spawns taken on (a redelivered spawn counts again). */
  started: number;
  completed: number;
  failed: number;
  /** Spawns whose outcome the transport had already stored. */
  duplicates: number;
  /** Spawn messages that were not a valid TaskSpawnMessage (terminated). */
  malformed: number;
  /** Attempts whose events could not be published (the spawn comes back later). */
  publishFailures: number;
  inFlight: number;
  lastError: string | null;
}

export interface TaskWorker {
  /** Stop taking spawns; tasks in flight are abandoned and handed back (nak) for another worker. */
  stop(): Promise<void>;
  stats(): TaskWorkerStats;
}

class Abandoned extends Error {}

export async function startTaskWorker(options: TaskWorkerOptions): Promise<TaskWorker> {
  const { transport, subjectPrefix } = options;
  const logger = options.logger ?? silentLogger;
  const minDurationMs = options.minDurationMs ?? 300;
  const maxDurationMs = Math.max(minDurationMs, options.maxDurationMs ?? 1_500);
  const failureRate = options.failureRate ?? 0;
  const progressSteps = Math.max(0, Math.floor(options.progressSteps ?? 2));
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const random = options.random ?? Math.random;
  if (!(failureRate >= 0 && failureRate <= 1)) throw new RangeError(`failureRate must be from 0 to 1, got ${failureRate}`);

  const stats: TaskWorkerStats = { started: 0, completed: 0, failed: 0, duplicates: 0, malformed: 0, publishFailures: 0, inFlight: 0, lastError: null };
  const running = new Set<Promise<void>>();
  const sleepers = new Set<() => void>();
  let slotFreed: (() => void) | null = null;
  let stopping = false;

  /** Resolves after `ms`, or rejects with Abandoned as soon as the worker stops. */
  function pause(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (stopping) return reject(new Abandoned());
      const timer = setTimeout(() => {
        sleepers.delete(abandon);
        resolve();
      }, ms);
      function abandon(): void {
        clearTimeout(timer);
        reject(new Abandoned());
      }
      sleepers.add(abandon);
    });
  }

  async function publishEvent(taskId: string, event: Omit<TaskEventMessage, 'v' | 'taskId' | 'at'>, msgId: string): Promise<boolean> {
    const message: TaskEventMessage = { v: 1, taskId, ...event, at: new Date().toISOString() };
    const result = await transport.publish(taskEventsSubject(taskId, subjectPrefix), encodeMessage(message), { msgId });
    return result.duplicate;
  }

  async function settle(message: InboundMessage, how: 'ack' | 'nak', delayMs?: number): Promise<void> {
    try {
      if (how === 'ack') await message.ack();
      else await message.nak(delayMs);
    } catch (error) {
      stats.lastError = errorText(error);
      logger.warn({ msgId: message.msgId, settle: how, err: stats.lastError }, 'could not settle a task spawn; it will be redelivered');
    }
  }

  async function work(message: InboundMessage, spawn: TaskSpawnMessage): Promise<void> {
    const startedAt = Date.now();
    const durationMs = minDurationMs + random() * (maxDurationMs - minDurationMs);
    const stepMs = durationMs / (progressSteps + 1);
    try {
      for (let step = 1; step <= progressSteps; step++) {
        await pause(stepMs);
        const progress = Math.round((100 * step) / (progressSteps + 1));
        await publishEvent(spawn.taskId, { type: 'progress', progress }, `${spawn.taskId}:progress:${step}`);
      }
      await pause(stepMs);
      const failed = random() < failureRate;
      const duplicate = await publishEvent(
        spawn.taskId,
        failed ? { type: 'failed', error: `simulated failure of "${spawn.description}"` } : { type: 'completed', result: `done: ${spawn.description}` },
        `${spawn.taskId}:done`,
      );
      // The outcome is stored: only now may the spawn go.
      await settle(message, 'ack');
      if (duplicate) stats.duplicates += 1;
      else if (failed) stats.failed += 1;
      else stats.completed += 1;
      const report: TaskReport = {
        taskId: spawn.taskId,
        supervisorId: spawn.supervisorId,
        description: spawn.description,
        outcome: failed ? 'failed' : 'completed',
        durationMs: Date.now() - startedAt,
        duplicate,
      };
      logger.info({ ...report }, 'task finished');
      options.onTaskFinished?.(report);
    } catch (error) {
      if (error instanceof Abandoned) {
        await settle(message, 'nak', 0);
        return;
      }
      stats.publishFailures += 1;
      stats.lastError = errorText(error);
      logger.warn({ taskId: spawn.taskId, err: stats.lastError, retryInMs: retryDelayMs }, 'could not publish a task event; the spawn comes back later');
      await settle(message, 'nak', retryDelayMs);
    }
  }

  async function onSpawn(message: InboundMessage): Promise<void> {
    const parsed = parseTaskSpawnMessage(message.data);
    if (!parsed.ok) {
      stats.malformed += 1;
      logger.warn({ msgId: message.msgId, problems: parsed.problems }, 'malformed task spawn terminated');
      try {
        await message.term(`malformed: ${parsed.problems.join('; ')}`);
      } catch (error) {
        stats.lastError = errorText(error);
      }
      return;
    }
    // The handler returns once the task is under way, so up to `concurrency` tasks run at once.
    while (running.size >= concurrency && !stopping) {
      await new Promise<void>((resolve) => {
        slotFreed = resolve;
      });
    }
    if (stopping) {
      await settle(message, 'nak', 0);
      return;
    }
    stats.started += 1;
    stats.inFlight += 1;
    const task = work(message, parsed.value).finally(() => {
      stats.inFlight -= 1;
      running.delete(task);
      const wake = slotFreed;
      slotFreed = null;
      wake?.();
    });
    running.add(task);
  }

  const subscription: Subscription = await transport.subscribe(
    {
      durable: options.durable ?? TASK_WORKERS_DURABLE,
      filterSubject: taskSpawnSubject(subjectPrefix),
      ackWaitMs: options.ackWaitMs ?? Math.max(30_000, maxDurationMs * 4),
    },
    onSpawn,
  );
  logger.debug({ durable: options.durable ?? TASK_WORKERS_DURABLE, concurrency }, 'task worker started');

  return {
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const abandon of [...sleepers]) abandon();
      sleepers.clear();
      const wake = slotFreed;
      slotFreed = null;
      wake?.();
      await subscription.stop();
      await Promise.all([...running]);
    },
    stats: () => ({ ...stats }),
  };
}
