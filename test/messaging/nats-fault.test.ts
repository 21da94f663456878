// The runtime across a NATS outage (a private nats-server we stop and restart) on real Postgres: save points keep
// committing, the outbox holds what could not be published, and afterwards everything arrives once and in order.

import { afterEach, describe, expect, it } from 'vitest';
import { countUnsentOutbox } from '../../src/persistence/outbox-repository.js';
import { silentLogger } from '../../src/runtime/logger.js';
import type { Messaging } from '../../src/runtime/messaging.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { ALL_QUESTIONS, ALL_SUPERVISOR_SUBJECTS, answersSubject, parseSupervisorSubject, withPrefix } from '../../src/transport/subjects.js';
import type { Transport } from '../../src/transport/transport.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { natsServerBinary, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';
import { bySupervisor, bytes, eventually, outboxRows, quietLogger, Recorder, sleep, type Received } from './messaging-harness.js';

const PREFIX = 'fault.';
const postgres = (await databaseTargets()).find((target) => target.name === 'postgres');
const gate = serverGate('nats-server binary', natsServerBinary() !== null, 'install nats-server or set NATS_SERVER_BIN to run the NATS fault suites');

(gate.run && postgres ? describe : describe.skip)('messaging across a NATS restart (real Postgres, private nats-server)', () => {
  const database = useIsolatedDatabase(postgres!);
  const cleanup: Array<() => Promise<unknown>> = [];
  // Registered after the database helper, so it runs before the schema is dropped.
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function setUp(): Promise<{ server: TestNatsServer; transport: Transport; runtime: SupervisorRuntime; messaging: Messaging }> {
    const server = await startNatsServer();
    cleanup.push(() => server.dispose());
    const transport = createNatsTransport({ servers: server.url, subjectPrefix: PREFIX, reconnectTimeWaitMs: 100, publishTimeoutMs: 1_000, logger: quietLogger });
    cleanup.push(() => transport.close());
    await transport.start();
    const runtime = createRuntime({ database: database(), transport, subjectPrefix: PREFIX, heartbeatIntervalMs: 0, logger: silentLogger });
    cleanup.push(() => runtime.shutdown({ closeDatabase: false, closeTransport: false }));
    const messaging = await runtime.startMessaging({
      embeddedWorker: false,
      relay: { pollIntervalMs: 100, maxBackoffMs: 400 },
      consumers: { ackWaitMs: 2_000, retryDelayMs: 200 },
    });
    cleanup.push(() => messaging.stop());
    return { server, transport, runtime, messaging };
  }

  it('while NATS is down save points keep committing and the outbox grows; after the restart the backlog drains in order', async () => {
    const { server, transport, runtime, messaging } = await setUp();
    const seen = await Recorder.start(transport, 'observer', withPrefix(ALL_SUPERVISOR_SUBJECTS, PREFIX));
    cleanup.push(() => seen.stop());
    const supervisors = await Promise.all([1, 2, 3].map((n) => runtime.spawn({ name: `outage ${n}` })));
    for (const supervisor of supervisors) await runtime.askQuestion(supervisor.id, { question: 'Before the outage?' });
    expect(await messaging.relay!.drain()).toBe(true);

    await server.stop();
    await eventually('the transport to report the outage', async () => ((await transport.health()).ok ? undefined : true), 5_000);
    for (let round = 1; round <= 5; round++) {
      for (const supervisor of supervisors) await runtime.askQuestion(supervisor.id, { question: `During the outage, #${round}?` });
    }
    const health = await runtime.health();
    expect(health).toMatchObject({ ok: false, database: { ok: true }, transport: { ok: false } });
    expect(await countUnsentOutbox(database().db)).toBeGreaterThanOrEqual(15);
    await eventually('the relay to notice', () => (messaging.relay!.stats().failures > 0 ? true : undefined), 5_000);
    expect(supervisors.every((supervisor) => supervisor.snapshot.context.pendingQuestions.length === 6)).toBe(true);

    await server.start();
    expect(await messaging.relay!.drain(15_000)).toBe(true);
    const rows = await outboxRows(database());
    const expectedOrder = bySupervisor(rows, (row) => row.supervisorId);
    const arrivalOrder = (received: Received[]) => bySupervisor(received, (message) => parseSupervisorSubject(message.subject, PREFIX)!);
    // The live subscriber got everything, in order. (A server restart may also hand it messages it had acked just before:
    // nats-server can lose a consumer's newest acks, so it is checked on first arrivals; the stream itself is audited below.)
    await eventually('the live subscriber to get every row', () => (new Set(seen.received.map((message) => message.msgId)).size >= rows.length ? true : undefined), 15_000);
    const firstArrivals = seen.received.filter((message, index) => seen.received.findIndex((other) => other.msgId === message.msgId) === index);
    expect(arrivalOrder(firstArrivals)).toEqual(expectedOrder);
    // The stream holds each row exactly once, in outbox order per supervisor.
    const audit = await Recorder.start(transport, 'audit', withPrefix(ALL_SUPERVISOR_SUBJECTS, PREFIX));
    cleanup.push(() => audit.stop());
    await audit.waitFor(rows.length, 10_000);
    await sleep(300);
    expect(audit.received.map((message) => message.msgId).sort()).toEqual(rows.map((row) => row.msgId).sort());
    expect(arrivalOrder(audit.received)).toEqual(expectedOrder);
    expect(messaging.relay!.stats()).toMatchObject({ unsentEstimate: 0, lastError: expect.stringMatching(/NATS unavailable/) });
  }, 30_000);

  it('1,000 questions and answers through a NATS restart mid-run: none lost, none duplicated', async () => {
    const { server, transport, runtime, messaging } = await setUp();
    // The human: answers each question, then acks it; a publish that fails leaves the question to be delivered again.
    const human = await Recorder.start(transport, 'human', withPrefix(ALL_QUESTIONS, PREFIX), async (message, received) => {
      const { supervisorId, questionId } = received.body as { supervisorId: string; questionId: string };
      await transport.publish(answersSubject(supervisorId, PREFIX), bytes({ questionId, answer: `answer to ${questionId}` }), { msgId: `answer:${questionId}` });
      await message.ack();
    });
    cleanup.push(() => human.stop());

    const supervisors = await Promise.all(Array.from({ length: 10 }, (_, n) => runtime.spawn({ name: `busy ${n}` })));
    const asked = new Set<string>();
    const wave = async (w: number) => {
      await Promise.all(
        supervisors.map(async (supervisor) => {
          for (let i = 0; i < 10; i++) {
            const { questionId } = await runtime.askQuestion(supervisor.id, { question: `Wave ${w}, question ${i}?` });
            asked.add(questionId);
          }
        }),
      );
    };
    for (let w = 1; w <= 4; w++) await wave(w);
    await server.stop();
    for (let w = 5; w <= 7; w++) await wave(w);
    await sleep(300);
    await server.start();
    for (let w = 8; w <= 10; w++) await wave(w);
    expect(asked.size).toBe(1_000);

    const answered = () => supervisors.reduce((sum, supervisor) => sum + supervisor.snapshot.context.answeredQuestionCount, 0);
    // On a loaded machine the backlog drains slowly: wait as long as answers keep being applied, fail once none is for 25 s.
    let applied = -1;
    let progressAt = Date.now();
    await eventually(
      () => `every answer to be applied (${answered()} so far)`,
      () => {
        const now = answered();
        if (now === 1_000) return true;
        if (now !== applied) [applied, progressAt] = [now, Date.now()];
        if (Date.now() - progressAt > 25_000) throw new Error(`no answer was applied for 25 s: ${now} of 1,000`);
        return undefined;
      },
      150_000,
      100,
    );

    // Supervisor side: each question answered exactly once, nothing left pending.
    const stored = await Promise.all(supervisors.map((supervisor) => runtime.questions(supervisor.id, { answered: true })));
    const answeredIds = stored.flat().map((question) => question.id);
    expect(new Set(answeredIds)).toEqual(asked);
    expect(answeredIds).toHaveLength(1_000);
    expect(supervisors.every((supervisor) => supervisor.snapshot.context.pendingQuestions.length === 0)).toBe(true);
    expect(messaging.consumers!.stats().answers).toMatchObject({ applied: 1_000, malformed: 0, unknown: 0, refused: 0 });

    // Subscriber side: every question reached the human; the stream holds exactly one message per question.
    expect(new Set(human.received.map((message) => message.body.questionId))).toEqual(asked);
    const audit = await Recorder.start(transport, 'audit', withPrefix(ALL_QUESTIONS, PREFIX));
    cleanup.push(() => audit.stop());
    await audit.waitFor(1_000, 10_000);
    await sleep(300);
    const perQuestion = new Map<string, number>();
    for (const message of audit.received) perQuestion.set(message.body.questionId as string, (perQuestion.get(message.body.questionId as string) ?? 0) + 1);
    expect(audit.received).toHaveLength(1_000);
    expect([...perQuestion.values()].every((count) => count === 1)).toBe(true);
    expect(await countUnsentOutbox(database().db)).toBe(0);
  }, 240_000);
});
