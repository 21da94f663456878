// The sample task worker on the in-process bus (and its CLI command on NATS): events in order, idempotent on redelivery,
// malformed spawns terminated, work handed back on stop.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/command.js';
import { runWorker } from '../../src/cli/commands/worker.js';
import { runCli } from '../../src/cli/main.js';
import { startTaskWorker, type TaskWorker } from '../../src/runtime/task-worker.js';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import type { TaskSpawnMessage } from '../../src/transport/messages.js';
import { ALL_TASK_EVENTS, taskSpawnSubject, withPrefix } from '../../src/transport/subjects.js';
import type { Transport } from '../../src/transport/transport.js';
import { NATS_ENABLE_LINE, natsAvailable, natsUrlForTests } from '../helpers/nats-server.js';
import { BIN, waitForExit } from '../helpers/processes.js';
import { serverGate } from '../helpers/servers.js';
import { bytes, deleteStreams, eventually, quietLogger, Recorder, sleep, uniquePrefix } from './messaging-harness.js';

const PREFIX = 'worker.';

function spawnMessage(overrides: Partial<TaskSpawnMessage> = {}): TaskSpawnMessage {
  return { v: 1, taskId: randomUUID(), supervisorId: randomUUID(), description: 'summarise the logs', spawnedAt: new Date().toISOString(), ...overrides };
}

async function publishSpawn(transport: Transport, spawn: TaskSpawnMessage, msgId = `${spawn.supervisorId}:2:0`): Promise<void> {
  await transport.publish(taskSpawnSubject(transport.subjectPrefix), bytes(spawn), { msgId });
}

function bufferIo(env: Record<string, string | undefined> = {}): CliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (text) => void (out += text), err: (text) => void (err += text), env, stdout: () => out, stderr: () => err };
}

describe('task worker on the in-process bus', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setUp(options: Partial<Parameters<typeof startTaskWorker>[0]> = {}): Promise<{ transport: Transport; worker: TaskWorker; events: Recorder }> {
    const transport = createInProcessBus({ subjectPrefix: PREFIX, logger: quietLogger });
    cleanup.push(() => transport.close());
    await transport.start();
    const events = await Recorder.start(transport, 'events', withPrefix(ALL_TASK_EVENTS, PREFIX));
    const worker = await startTaskWorker({ transport, subjectPrefix: PREFIX, minDurationMs: 10, maxDurationMs: 30, ...options });
    cleanup.push(() => worker.stop());
    return { transport, worker, events };
  }

  it('publishes progress events, then the outcome, on tasks.<taskId>.events with msgIds derived from the task id, then acks the spawn', async () => {
    const { transport, worker, events } = await setUp({ progressSteps: 3 });
    const spawn = spawnMessage();
    await publishSpawn(transport, spawn);
    await events.waitFor(4);
    expect(events.received.map((message) => [message.subject, message.msgId, message.body.type, message.body.progress])).toEqual([
      [`${PREFIX}tasks.${spawn.taskId}.events`, `${spawn.taskId}:progress:1`, 'progress', 25],
      [`${PREFIX}tasks.${spawn.taskId}.events`, `${spawn.taskId}:progress:2`, 'progress', 50],
      [`${PREFIX}tasks.${spawn.taskId}.events`, `${spawn.taskId}:progress:3`, 'progress', 75],
      [`${PREFIX}tasks.${spawn.taskId}.events`, `${spawn.taskId}:done`, 'completed', undefined],
    ]);
    expect(events.received[3]!.body).toMatchObject({ v: 1, taskId: spawn.taskId, result: 'done: summarise the logs' });
    await eventually('the stats to settle', () => (worker.stats().inFlight === 0 ? true : undefined));
    expect(worker.stats()).toMatchObject({ started: 1, completed: 1, failed: 0, duplicates: 0 });
  });

  it('a spawn delivered twice publishes its events once: the repeats carry the same msgIds and are dropped', async () => {
    const { transport, worker, events } = await setUp({ progressSteps: 1 });
    const spawn = spawnMessage();
    await publishSpawn(transport, spawn, 'first-delivery');
    await events.waitFor(2);
    await publishSpawn(transport, spawn, 'redelivered');
    await eventually('the second run to finish', () => (worker.stats().started === 2 && worker.stats().inFlight === 0 ? true : undefined));
    await sleep(50);
    expect(events.received.map((message) => message.msgId)).toEqual([`${spawn.taskId}:progress:1`, `${spawn.taskId}:done`]);
    expect(worker.stats()).toMatchObject({ completed: 1, duplicates: 1 });
  });

  it('with failure rate 1 every task reports failed with an error', async () => {
    const { transport, worker, events } = await setUp({ failureRate: 1, progressSteps: 0 });
    await publishSpawn(transport, spawnMessage({ description: 'doomed' }));
    const [outcome] = await events.waitFor(1);
    expect(outcome!.body).toMatchObject({ type: 'failed', error: 'simulated failure of "doomed"' });
    await eventually('the stats to settle', () => (worker.stats().failed === 1 ? true : undefined));
  });

  it('a malformed spawn is terminated and counted, and the next one is worked on', async () => {
    const { transport, worker, events } = await setUp({ progressSteps: 0 });
    await transport.publish(taskSpawnSubject(PREFIX), bytes({ taskId: 'x' }), { msgId: 'bad' });
    await publishSpawn(transport, spawnMessage());
    await events.waitFor(1);
    expect(worker.stats()).toMatchObject({ malformed: 1, started: 1 });
  });

  it('stop() hands a task in flight back; another worker on the same durable finishes it', async () => {
    const { transport, worker } = await setUp({ minDurationMs: 10_000, maxDurationMs: 10_000, progressSteps: 0 });
    const spawn = spawnMessage();
    await publishSpawn(transport, spawn);
    await eventually('the first worker to take it', () => (worker.stats().inFlight === 1 ? true : undefined));
    const stoppedAt = Date.now();
    await worker.stop();
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);

    const finished: string[] = [];
    const second = await startTaskWorker({ transport, subjectPrefix: PREFIX, minDurationMs: 5, maxDurationMs: 10, onTaskFinished: (report) => finished.push(report.taskId) });
    cleanup.push(() => second.stop());
    await eventually('the second worker to finish it', () => (finished.length === 1 ? true : undefined), 5_000);
    expect(finished).toEqual([spawn.taskId]);
  });
});

const natsUrl = natsUrlForTests();
const natsGate = serverGate('NATS', await natsAvailable(natsUrl), NATS_ENABLE_LINE);

describe('supervisor-runtime worker (command)', () => {
  it('without NATS it fails with an error saying the worker needs NATS and that the embedded daemon runs one in-process', async () => {
    const io = bufferIo({});
    expect(await runCli(['worker'], io)).toBe(1);
    expect(io.stderr()).toMatch(/worker needs NATS: set NATS_URL or pass --nats-url/);
    expect(io.stderr()).toMatch(/daemon runs a task worker in-process/);
  });

  it('rejects a failure rate outside 0..1 and --max-ms below --min-ms, naming the flag', async () => {
    const rate = bufferIo({ NATS_URL: 'nats://127.0.0.1:4222' });
    expect(await runCli(['worker', '--failure-rate', '2'], rate)).toBe(1);
    expect(rate.stderr()).toMatch(/Invalid setting --failure-rate: expected a number from 0 to 1, got "2"/);
    const range = bufferIo({});
    expect(await runCli(['worker', '--nats-url', 'nats://127.0.0.1:4222', '--min-ms', '500', '--max-ms', '100'], range)).toBe(1);
    expect(range.stderr()).toMatch(/Invalid setting --max-ms: must be at least --min-ms \(500\)/);
  });

  it('is listed in the usage', async () => {
    const io = bufferIo();
    await runCli(['--help'], io);
    expect(io.stdout()).toMatch(/^\s+worker\s+run the sample task worker/m);
  });

  (natsGate.run ? it : it.skip)('runs against NATS, logs one line per task, and returns 0 when told to stop', async () => {
    const prefix = uniquePrefix('wcli');
    const io = bufferIo();
    let stop: (signal: string) => void = () => undefined;
    const until = new Promise<string>((resolve) => (stop = resolve));
    const running = runWorker({ natsUrl, subjectPrefix: prefix, minDurationMs: 10, maxDurationMs: 30, failureRate: 0 }, io, until);
    try {
      await eventually('the worker to start', () => (io.stdout().includes('worker taking tasks') ? true : undefined), 5_000);
      const transport = createNatsTransport({ servers: natsUrl, subjectPrefix: prefix, logger: quietLogger });
      await transport.start();
      try {
        const spawns = [spawnMessage({ description: 'first' }), spawnMessage({ description: 'second' })];
        for (const spawn of spawns) await publishSpawn(transport, spawn);
        await eventually('a line per task', () => (io.stdout().match(/^task .* completed in \d+ ms/gm)?.length === 2 ? true : undefined), 5_000);
        for (const spawn of spawns) expect(io.stdout()).toContain(`task ${spawn.taskId} completed`);
      } finally {
        await transport.close();
      }
      stop('SIGTERM');
      expect(await running).toBe(0);
      expect(io.stdout()).toMatch(/SIGTERM: worker stopped after 2 completed and 0 failed task\(s\)/);
    } finally {
      stop('SIGTERM');
      await running.catch(() => undefined);
      await deleteStreams(natsUrl, prefix);
    }
  });

  (natsGate.run ? it : it.skip)('as a real process (built bin) it exits 0 on SIGTERM', async () => {
    const prefix = uniquePrefix('wbin');
    const child = spawn(process.execPath, [BIN, 'worker', '--min-ms', '10', '--max-ms', '20'], {
      env: { ...process.env, NATS_URL: natsUrl, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix, LOG_PRETTY: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await eventually(() => `the worker to start (stdout: ${stdout}, stderr: ${stderr})`, () => (stdout.includes('worker taking tasks') ? true : undefined), 10_000);
      child.kill('SIGTERM');
      expect(await waitForExit(child)).toBe(0);
      expect(stdout).toMatch(/SIGTERM: worker stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await deleteStreams(natsUrl, prefix);
    }
  });
});
