// The whole system as a user runs it with real servers: a daemon on Postgres + NATS JetStream, a separate
// `supervisor-runtime worker` process, and a front end that speaks plain NATS; the daemon is killed with SIGKILL
// while an answer is on its way.

import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { ALL_QUESTIONS, answersSubject, withPrefix } from '../../src/transport/subjects.js';
import { createDaemonDatabase, daemonRequest, startDaemonProcess, type DaemonProcess } from '../helpers/daemon.js';
import { natsUrlForTests } from '../helpers/nats-server.js';
import { BIN, waitForExit } from '../helpers/processes.js';
import { bytes, deleteStreams, eventually, messagingTargets, quietLogger, Recorder, uniquePrefix } from './messaging-harness.js';

const target = (await messagingTargets()).find((candidate) => candidate.transport === 'nats');

const call = daemonRequest;

interface View {
  id: string;
  state: string;
  spawnedTaskIds: string[];
  pendingQuestions: Array<{ id: string; deliveryCount: number }>;
}

(target ? describe : describe.skip)('daemon + worker processes over NATS JetStream on Postgres', () => {
  const natsUrl = natsUrlForTests();
  const prefix = uniquePrefix('dn');
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await deleteStreams(natsUrl, prefix);
  });

  it('tasks are done by the worker over NATS; a question reaches a NATS subscriber; an answer published while the daemon is killed is applied after restart', { timeout: 120_000 }, async () => {
    const database = await createDaemonDatabase(target!.database, 'sr_nats');
    cleanup.push(() => database.cleanup());
    const env = { ...database.env, NATS_URL: natsUrl, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix, SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false' };

    const first = await startDaemonProcess({ env });
    cleanup.push(() => first.stop('SIGKILL'));
    const worker = spawn(process.execPath, [BIN, 'worker', '--nats-url', natsUrl, '--min-ms', '100', '--max-ms', '300'], {
      env: { ...process.env, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix, LOG_PRETTY: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerOutput = '';
    worker.stdout.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
    worker.stderr.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
    cleanup.push(async () => {
      worker.kill('SIGTERM');
      await waitForExit(worker);
    });

    // A front end: it hears questions on NATS and answers on NATS.
    const frontEnd = createNatsTransport({ servers: natsUrl, subjectPrefix: prefix, logger: quietLogger });
    await frontEnd.start();
    cleanup.push(() => frontEnd.close());
    const questions = await Recorder.start(frontEnd, 'front-end-questions', withPrefix(ALL_QUESTIONS, prefix));
    cleanup.push(() => questions.stop());

    const supervisor = await call<View>(first, 'POST', '/supervisors', { name: 'over-nats', driver: 'scripted' });
    const [asked] = await questions.waitFor(1, 20_000);
    expect(asked?.subject).toBe(`${prefix}supervisors.${supervisor.id}.questions`);
    expect(asked?.body).toMatchObject({ v: 1, supervisorId: supervisor.id, deliveryCount: 1, redelivery: false });
    const questionId = String(asked?.body.questionId);

    // The worker process finishes both tasks over NATS while the question waits.
    await eventually(
      () => `both tasks finished (worker said: ${workerOutput.slice(-500)})`,
      async () => {
        const entries = (await call<{ entries: Array<{ role: string; content: string }> }>(first, 'GET', `/supervisors/${supervisor.id}/conversation`)).entries;
        return entries.filter((entry) => entry.role === 'tool' && / completed/.test(entry.content)).length === 2 ? true : undefined;
      },
      30_000,
      200,
    );
    const waiting = await call<View>(first, 'GET', `/supervisors/${supervisor.id}`);
    expect(waiting.state).toBe('waiting_for_user');

    await first.stop('SIGKILL');
    // The human answers while no daemon runs: JetStream keeps it.
    await frontEnd.publish(answersSubject(supervisor.id, prefix), bytes({ questionId, answer: 'incremental' }), { msgId: `answer-${questionId}` });

    const second = await startDaemonProcess({ env });
    cleanup.push(() => second.stop('SIGTERM'));
    const done = await eventually(
      'the supervisor to complete after the restart',
      async () => {
        const view = await call<View>(second, 'GET', `/supervisors/${supervisor.id}`);
        return view.state === 'completed' ? view : undefined;
      },
      30_000,
      200,
    );
    expect(done.pendingQuestions).toEqual([]);
    // Restoration re-delivered the open question before the kept answer was applied.
    const redelivered = await questions.waitFor(2, 10_000);
    expect(redelivered[1]?.body).toMatchObject({ questionId, deliveryCount: 2, redelivery: true });
    const entries = (await call<{ entries: Array<{ role: string; content: string }> }>(second, 'GET', `/supervisors/${supervisor.id}/conversation`)).entries;
    expect(entries.filter((entry) => entry.role === 'user').map((entry) => entry.content)).toEqual(['incremental']);
    expect(workerOutput).toMatch(/completed/);
  });
});
