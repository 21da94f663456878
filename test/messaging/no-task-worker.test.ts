// Nobody takes the tasks: a supervisor would wait in waiting_for_tasks forever. The daemon says so once in its log,
// in /metrics and as a registry warning (the dashboard's badge), and takes it back when a worker starts.

import { describe, expect, it, vi } from 'vitest';
import { NO_TASK_WORKER_WARNING } from '../../src/runtime/task-worker-watch.js';
import { startTaskWorker } from '../../src/runtime/task-worker.js';
import { recordingLogger } from '../runtime/runtime-fixtures.js';
import { messagingTargets, useMessagingEnvironment } from './messaging-harness.js';

const WATCH = { intervalMs: 100, graceMs: 600 };

for (const target of await messagingTargets()) {
  describe(`no task worker on ${target.name}`, () => {
    const env = useMessagingEnvironment(target);

    it('tasks waiting with no worker raise one warning (log, metric, registry) after the grace period; a worker clears it', async () => {
      const logger = recordingLogger();
      const transport = await env.transport();
      const runtime = await env.runtime({ transport, logger });
      const messaging = await runtime.startMessaging({ embeddedWorker: false, relay: { pollIntervalMs: 100 }, consumers: { ackWaitMs: 2_000, retryDelayMs: 200 }, taskWorkerWatch: WATCH });
      env.defer(() => messaging.stop());
      const warnings = () => runtime.registry.getSnapshot().context.warnings;

      const supervisor = await runtime.spawn({ name: 'starved' });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'nobody will take this' });
      const spawnedAt = Date.now();
      expect(await messaging.relay!.drain()).toBe(true);

      await vi.waitFor(() => expect(warnings()[NO_TASK_WORKER_WARNING]).toBeDefined(), { timeout: 15_000, interval: 50 });
      // Not before the grace period: a worker that is only slow to pull is not missing.
      expect(Date.now() - spawnedAt).toBeGreaterThanOrEqual(WATCH.graceMs);
      const warning = warnings()[NO_TASK_WORKER_WARNING]!;
      expect(warning.message).toMatch(/1 task\(s\) are running with no worker: 1 spawn message\(s\) wait on .*tasks\.spawn and no worker takes them/);
      expect(warning.message).toMatch(/supervisor-runtime worker/);
      expect(warning.detail).toMatchObject({ runningTasks: 1, waitingTasks: 1, durable: 'task-workers' });
      expect(runtime.stats().taskWorkers).toMatchObject({ noWorker: true, waitingTasks: 1 });
      const metrics = (await runtime.metrics()).text;
      expect(metrics).toMatch(/^supervisor_runtime_task_workers_missing\{[^}]*\} 1$/m);
      expect(metrics).toMatch(/^supervisor_runtime_tasks_waiting_for_worker\{[^}]*\} 1$/m);

      // Said once in the log, however many rounds see it.
      await messaging.taskWorkerWatch!.check();
      await messaging.taskWorkerWatch!.check();
      expect(logger.entries.filter((entry) => entry.level === 'warn' && /no worker takes them/.test(entry.message ?? ''))).toHaveLength(1);

      const worker = await startTaskWorker({ transport, subjectPrefix: env.prefix(), minDurationMs: 10, maxDurationMs: 20, logger: logger.child({}) });
      env.defer(() => worker.stop());
      await vi.waitFor(async () => expect((await runtime.tasks(supervisor.id)).find((task) => task.id === taskId)?.status).toBe('completed'), { timeout: 15_000, interval: 50 });
      await vi.waitFor(() => expect(warnings()[NO_TASK_WORKER_WARNING]).toBeUndefined(), { timeout: 15_000, interval: 50 });
      expect(runtime.stats().taskWorkers).toMatchObject({ noWorker: false, waitingTasks: 0 });
      expect((await runtime.metrics()).text).toMatch(/^supervisor_runtime_task_workers_missing\{[^}]*\} 0$/m);
      expect(logger.entries.some((entry) => entry.message === 'task workers are taking tasks again')).toBe(true);
    });

    it('no warning while a worker takes the tasks, and none when nothing was spawned', async () => {
      const transport = await env.transport();
      const runtime = await env.runtime({ transport });
      const messaging = await runtime.startMessaging({ embeddedWorker: true, worker: { minDurationMs: 10, maxDurationMs: 20 }, relay: { pollIntervalMs: 100 }, taskWorkerWatch: WATCH });
      env.defer(() => messaging.stop());
      const supervisor = await runtime.spawn({ name: 'served' });
      await messaging.taskWorkerWatch!.check();
      expect(runtime.stats().taskWorkers).toMatchObject({ noWorker: false, waitingTasks: 0 });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'a worker takes this' });
      await vi.waitFor(async () => expect((await runtime.tasks(supervisor.id)).find((task) => task.id === taskId)?.status).toBe('completed'), { timeout: 15_000, interval: 50 });
      // Rounds over more than the grace period after the work: still no warning.
      const until = Date.now() + WATCH.graceMs * 2;
      while (Date.now() < until) {
        await messaging.taskWorkerWatch!.check();
        expect(runtime.registry.getSnapshot().context.warnings[NO_TASK_WORKER_WARNING]).toBeUndefined();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(runtime.stats().taskWorkers?.noWorker).toBe(false);
    });
  });
}
