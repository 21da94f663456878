// Kill a real daemon between commit and publish: questions committed while NATS is down stay in the outbox, the daemon
// is killed with SIGKILL, and after NATS and the daemon come back every outbox row reaches a subscriber exactly once.

import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { ALL_QUESTIONS, withPrefix } from '../../src/transport/subjects.js';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, daemonRequest, startDaemonProcess } from '../helpers/daemon.js';
import { natsServerBinary, startNatsServer } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';
import { eventually, quietLogger, Recorder, uniquePrefix } from './messaging-harness.js';

const postgres = (await databaseTargets()).find((target) => target.name === 'postgres');
const gate = serverGate('nats-server binary', natsServerBinary() !== null, 'install nats-server or set NATS_SERVER_BIN to run the NATS fault suites');

(gate.run && postgres ? describe : describe.skip)('a daemon killed between commit and publish (Postgres + private nats-server)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it('publishes every committed question exactly once after the restart', { timeout: 120_000 }, async () => {
    const server = await startNatsServer();
    cleanup.push(() => server.dispose());
    const database = await createDaemonDatabase(postgres!, 'sr_outbox_crash');
    cleanup.push(() => database.cleanup());
    const prefix = uniquePrefix('oc');
    const env = { ...database.env, NATS_URL: server.url, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix, SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false' };

    const first = await startDaemonProcess({ env });
    cleanup.push(() => first.stop('SIGKILL'));
    const supervisor = await daemonRequest<{ id: string }>(first, 'POST', '/supervisors', { name: 'outbox-crash' });

    // NATS goes away; save points keep committing, and their messages wait in the outbox.
    await server.stop();
    const asked: string[] = [];
    for (let i = 0; i < 3; i++) asked.push((await daemonRequest<{ questionId: string }>(first, 'POST', `/supervisors/${supervisor.id}/questions`, { question: `q${i}?` })).questionId);
    const db = new pg.Client({ connectionString: database.env.DATABASE_URL });
    await db.connect();
    cleanup.push(() => db.end());
    const unsent = await db.query<{ n: string }>(`SELECT count(*) AS n FROM supervisor_outbox WHERE sent_at IS NULL AND subject LIKE '%.questions'`);
    expect(Number(unsent.rows[0]?.n)).toBe(3);

    await first.stop('SIGKILL');
    await server.start();
    const subscriberTransport = createNatsTransport({ servers: server.url, subjectPrefix: prefix, logger: quietLogger });
    await subscriberTransport.start();
    cleanup.push(() => subscriberTransport.close());
    const questions = await Recorder.start(subscriberTransport, 'audit-questions', withPrefix(ALL_QUESTIONS, prefix));
    cleanup.push(() => questions.stop());

    const second = await startDaemonProcess({ env });
    cleanup.push(() => second.stop('SIGTERM'));
    // Three first deliveries from before the kill, and three re-deliveries from the restoration.
    const rows = await eventually(
      'every question outbox row to be marked sent',
      async () => {
        const result = await db.query<{ msg_id: string; sent: boolean }>(`SELECT msg_id, sent_at IS NOT NULL AS sent FROM supervisor_outbox WHERE subject LIKE '%.questions' ORDER BY id`);
        return result.rows.length === 6 && result.rows.every((row) => row.sent) ? result.rows : undefined;
      },
      30_000,
      200,
    );
    await questions.waitFor(6, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(questions.received.map((message) => message.msgId).sort()).toEqual(rows.map((row) => row.msg_id).sort());
    const firstDeliveries = questions.received.filter((message) => message.body.redelivery === false).map((message) => String(message.body.questionId));
    expect(firstDeliveries.sort()).toEqual([...asked].sort());
  });
});
