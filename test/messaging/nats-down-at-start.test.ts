// A daemon whose NATS server is down when it starts: it restores and serves anyway (health says what is missing),
// save points commit into the outbox, and when NATS comes up messaging starts by itself and the backlog arrives.

import { afterAll, describe, expect, it } from 'vitest';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { ALL_QUESTIONS, withPrefix } from '../../src/transport/subjects.js';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, daemonRequest, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { natsServerBinary, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';
import { eventually, quietLogger, Recorder, uniquePrefix } from './messaging-harness.js';

const postgres = (await databaseTargets()).find((target) => target.name === 'postgres');
const gate = serverGate('nats-server binary', natsServerBinary() !== null, 'install nats-server or set NATS_SERVER_BIN to run the NATS fault suites');

(gate.run && postgres ? describe : describe.skip)('a daemon started while its NATS is down (real Postgres, private nats-server)', () => {
  const prefix = uniquePrefix('down');
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it('serves and restores without NATS, says so on /healthz, and publishes the questions once NATS comes up', { timeout: 120_000 }, async () => {
    const server: TestNatsServer = await startNatsServer();
    cleanup.push(() => server.dispose());
    await server.stop();
    const database: DaemonDatabase = await createDaemonDatabase(postgres!, 'sr_down');
    cleanup.push(() => database.cleanup());
    const daemon: DaemonProcess = await startDaemonProcess({ env: { ...database.env, NATS_URL: server.url, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix }, ready: 'serving' });
    cleanup.push(() => daemon.stop('SIGKILL'));
    expect(daemon.logs()).toMatch(/NATS is not reachable: serving and restoring without it/);

    const health = await fetch(`${daemon.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ database: { ok: true }, transport: { ok: false } });
    const supervisor = await daemonRequest<{ id: string }>(daemon, 'POST', '/supervisors', { name: 'patient' });
    const asked = await daemonRequest<{ questionId: string }>(daemon, 'POST', `/supervisors/${supervisor.id}/questions`, { question: 'Anyone there?' });

    await server.start();
    await eventually('the daemon to start messaging', () => (/NATS answers: messaging started/.test(daemon.logs()) ? true : undefined), 30_000, 100);
    const front = createNatsTransport({ servers: server.url, subjectPrefix: prefix, logger: quietLogger });
    await front.start();
    cleanup.push(() => front.close());
    const questions = await Recorder.start(front, 'front-end', withPrefix(ALL_QUESTIONS, prefix));
    cleanup.push(() => questions.stop());
    const received = await questions.waitFor(1, 20_000);
    expect(received[0]?.body).toMatchObject({ supervisorId: supervisor.id, questionId: asked.questionId, question: 'Anyone there?' });
    await eventually('/healthz to answer 200', async () => ((await fetch(`${daemon.url}/healthz`)).status === 200 ? true : undefined), 20_000, 200);
  });
});
