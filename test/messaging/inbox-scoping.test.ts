// The inbox path between recording (any daemon) and applying (the owner): what a message id deduplicates against, what
// happens to messages for finished supervisors, what counts against `maxUnexpectedFailures`, who applies while the
// owner has no transport, and supervisor ids in capitals.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import { pruneInbox } from '../../src/persistence/ownership/inbox.js';
import { emptyInboundCounts, startInboundConsumers, type InboundConsumerParts } from '../../src/runtime/inbound-consumers.js';
import { silentLogger } from '../../src/runtime/logger.js';
import type { MessagingOptions } from '../../src/runtime/messaging.js';
import { answersSubject, taskEventsSubject } from '../../src/transport/subjects.js';
import { bytes, eventually, messagingTargets, useMessagingEnvironment } from './messaging-harness.js';

const FAST_CONSUMERS = { ackWaitMs: 600, retryDelayMs: 100 };
const FAST_MESSAGING: MessagingOptions = { embeddedWorker: false, relay: { pollIntervalMs: 100 }, consumers: FAST_CONSUMERS, inbox: { pollIntervalMs: 100 } };
/** Long enough for a message to be applied on either target, short enough that a failing test fails fast. */
const SETTLE_MS = 5_000;

for (const target of await messagingTargets()) {
  describe(`inbox scoping on ${target.name}`, () => {
    const env = useMessagingEnvironment(target);

    async function messagingRuntime(options: Parameters<typeof env.runtime>[0] = {}) {
      const transport = await env.transport();
      const runtime = await env.runtime({ ...options, transport });
      const messaging = await runtime.startMessaging(FAST_MESSAGING);
      env.defer(() => messaging.stop());
      return { runtime, messaging, transport };
    }

    it('message ids deduplicate per subject: a task event whose id an answer already used (another stream) is applied', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'collide' });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'work' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go?' });

      // A front end numbers its answers 1, 2, 3…; a worker numbers its events 1, 2, 3… too.
      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'yes' }), { msgId: '1' });
      await eventually('the answer to apply', () => (messaging.consumers!.stats().answers.applied === 1 ? true : undefined), SETTLE_MS);
      const event = await transport.publish(taskEventsSubject(taskId, env.prefix()), bytes({ taskId, type: 'completed', result: 'ok' }), { msgId: '1' });
      expect(event.duplicate).toBe(false);

      await eventually(() => `the task event to apply (${JSON.stringify(messaging.consumers!.stats().taskEvents)})`, () => (messaging.consumers!.stats().taskEvents.applied === 1 ? true : undefined), SETTLE_MS);
      expect(messaging.consumers!.stats().taskEvents).toMatchObject({ applied: 1, duplicates: 0 });
      expect((await runtime.tasks(supervisor.id)).map((task) => task.status)).toEqual(['completed']);
      const keys = await sql<{ msg_id: string }>`SELECT msg_id FROM supervisor_inbox ORDER BY id`.execute(env.database().db);
      expect(keys.rows.map((row) => row.msg_id)).toEqual([`${answersSubject(supervisor.id, env.prefix())}\n1`, `${taskEventsSubject(taskId, env.prefix())}\n1`]);
    });

    it('a message for a finished supervisor whose owner is gone is recorded stamped refused (acked, counted, prunable)', async () => {
      // d1 runs a supervisor with a running task; the supervisor fails and d1 goes away (a restart under the default id
      // `<hostname>-<pid>` is a new daemon), so nobody ever claims the finished supervisor.
      const d1 = await env.runtime({ daemonId: `d1-${env.prefix()}` });
      const supervisor = await d1.spawn({ name: 'finished' });
      const { taskId } = await d1.spawnTask(supervisor.id, { description: 'slow work' });
      const { questionId } = await d1.askQuestion(supervisor.id, { question: 'Go?' });
      await d1.send(supervisor.id, { type: 'FAIL', error: 'gave up' });
      expect(supervisor.state).toBe('failed');
      await d1.shutdown({ closeDatabase: false, closeTransport: false });

      const { messaging, transport } = await messagingRuntime({ daemonId: `d2-${env.prefix()}` });
      // The worker finishes late, a human answers late.
      await transport.publish(taskEventsSubject(taskId, env.prefix()), bytes({ taskId, type: 'completed', result: 'late' }), { msgId: `${taskId}:done` });
      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'late' }), { msgId: 'late-answer' });
      await eventually('both to be refused', () => {
        const stats = messaging.consumers!.stats();
        return stats.taskEvents.refused === 1 && stats.answers.refused === 1 ? true : undefined;
      }, SETTLE_MS);
      expect(messaging.consumers!.stats().taskEvents).toMatchObject({ recorded: 1, refused: 1, applied: 0, retried: 0 });

      const db = env.database().db;
      const rows = await sql<{ applied_at: Date | null; outcome: string | null; detail: string | null }>`SELECT applied_at, outcome, detail FROM supervisor_inbox ORDER BY id`.execute(db);
      expect(rows.rows).toEqual([
        { applied_at: expect.any(Date), outcome: 'refused', detail: 'supervisor is failed' },
        { applied_at: expect.any(Date), outcome: 'refused', detail: 'supervisor is failed' },
      ]);
      // Handled, so retention prunes them like any other.
      expect(await pruneInbox(db, new Date(Date.now() + 60_000))).toBe(2);
    });

    it('one unexpected error after a database outage of 25 deliveries is retried, not given up at once; repeated ones still are', async () => {
      const transport = await env.transport();
      const runtime = await env.runtime({ transport });
      const supervisor = await runtime.spawn({ name: 'patient' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go?' });
      const db = env.database().db;
      // One unexpected server-side error on the first insert attempt of 'after-outage' (a sequence is not rolled back
      // with the statement), and one on every attempt of 'explode'.
      await sql`CREATE SEQUENCE flaky_once`.execute(db);
      await sql`CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.payload->>'answer' = 'explode' OR nextval('flaky_once') = 1 THEN RAISE EXCEPTION 'transient hiccup'; END IF;
        RETURN NEW; END $$`.execute(db);
      await sql`CREATE TRIGGER flaky BEFORE INSERT ON supervisor_inbox FOR EACH ROW EXECUTE FUNCTION flaky()`.execute(db);

      // The database is away for the first 25 deliveries (what host.ready() raises during an outage).
      let readyCalls = 0;
      const host: InboundConsumerParts['host'] = {
        database: env.database(),
        transport,
        logger: silentLogger,
        daemonId: 'outage-daemon',
        async ready() {
          readyCalls += 1;
          if (readyCalls <= 25) throw new DatabaseUnavailableError('join', undefined, new Error('connect ECONNREFUSED'));
        },
      };
      const counts = { answers: emptyInboundCounts(), taskEvents: emptyInboundCounts(), messages: emptyInboundCounts() };
      const consumers = await startInboundConsumers(
        { host, counts, channel: null, onRecordedForSelf: () => {} },
        { ackWaitMs: 2_000, retryDelayMs: 1, maxRetryDelayMs: 5, maxUnexpectedFailures: 3, answersDurable: 'outage-answers', taskEventsDurable: 'outage-events', messagesDurable: 'outage-messages' },
      );
      env.defer(() => consumers.stop());

      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'yes' }), { msgId: 'after-outage' });
      await eventually('the answer to settle', () => (counts.answers.recorded + counts.answers.gaveUp > 0 ? true : undefined), SETTLE_MS);
      expect(counts.answers).toMatchObject({ recorded: 1, gaveUp: 0, retried: 26 });

      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'explode' }), { msgId: 'explode' });
      await eventually('the explosive answer to be given up', () => (counts.answers.gaveUp === 1 ? true : undefined), SETTLE_MS);
      expect(counts.answers).toMatchObject({ recorded: 1, gaveUp: 1, retried: 28 });
      await eventually('its dead letter', async () => ((await runtime.deadLetters()).total === 1 ? true : undefined), SETTLE_MS);
      expect((await runtime.deadLetters()).deadLetters[0]?.reason).toMatch(/^gave up after 3 unexpected failures: .*transient hiccup/);
    });

    it('an answer on a subject naming the supervisor in capitals, with the same id in lowercase in its body, is applied', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'caps' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go?' });
      // The subject in capitals; the body's supervisorId (copied from the question message) in lowercase.
      await transport.publish(answersSubject(supervisor.id.toUpperCase(), env.prefix()), bytes({ questionId, answer: 'yes', supervisorId: supervisor.id }), { msgId: 'caps-1' });
      await eventually('the answer to be handled', () => {
        const stats = messaging.consumers!.stats().answers;
        return stats.applied + stats.malformed > 0 ? stats : undefined;
      }, SETTLE_MS);
      expect(messaging.consumers!.stats().answers).toMatchObject({ applied: 1, malformed: 0 });
      expect(supervisor.state).toBe('working');
    });

    it('an owner that started without its transport still applies what other daemons record for its supervisors', async () => {
      const transport = await env.transport();
      // d1: what startDaemon does when NATS does not answer at start.
      const d1 = await env.runtime({ daemonId: `d1-${env.prefix()}`, transport });
      await d1.start({ messaging: false });
      const supervisor = await d1.spawn({ name: 'owned-by-d1' });
      const { questionId } = await d1.askQuestion(supervisor.id, { question: 'Go?' });
      // d2 reaches the transport and receives the human's answer.
      const d2 = await env.runtime({ daemonId: `d2-${env.prefix()}`, transport });
      await d2.start({ messaging: FAST_MESSAGING });
      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'yes' }), { msgId: 'for-d1' });
      await eventually('d1 to apply the answer d2 recorded', () => (supervisor.state === 'working' ? true : undefined), SETTLE_MS);
      await eventually('d1 to count it', () => (d1.stats().inbound?.answers.applied === 1 ? true : undefined), SETTLE_MS);

      // When d1's transport comes back, messaging reuses the inbox it already runs: one applier, one set of counts.
      const messaging = await d1.startMessaging(FAST_MESSAGING);
      const { questionId: next } = await d1.askQuestion(supervisor.id, { question: 'Again?' });
      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId: next, answer: 'yes' }), { msgId: 'for-d1-again' });
      await eventually('the second answer to apply', () => (supervisor.state === 'working' ? true : undefined), SETTLE_MS);
      await eventually('d1 to count both', () => (messaging.consumers!.stats().answers.applied === 2 ? true : undefined), SETTLE_MS);
    });
  });
}
