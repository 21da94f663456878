// The runtime on its transport: outbox rows reach subscribers once and in order, answers and task events come back in,
// malformed messages are terminated, and a crash between commit and publish loses and duplicates nothing.

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/persistence/database.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startOutboxRelay, type OutboxRelayHost } from '../../src/runtime/outbox-relay.js';
import type { SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import {
  ALL_QUESTIONS,
  ALL_SUPERVISOR_SUBJECTS,
  answersSubject,
  parseSupervisorSubject,
  questionsSubject,
  taskEventsSubject,
  taskSpawnSubject,
  withPrefix,
} from '../../src/transport/subjects.js';
import type { Transport } from '../../src/transport/transport.js';
import {
  bytes,
  bySupervisor,
  eventually,
  messagingTargets,
  outboxRows,
  Recorder,
  sleep,
  useMessagingEnvironment,
} from './messaging-harness.js';

/** Consumers settle fast in tests, so "not acked" would show up as a redelivery within the test. */
const FAST_CONSUMERS = { ackWaitMs: 600, retryDelayMs: 200 };
const FAST_RELAY = { pollIntervalMs: 100 };
const FAST_INBOX = { pollIntervalMs: 100 };

/** A relay of its own over this database and transport, as a restarted daemon (or a second one) runs it. */
function relayHost(database: OutboxRelayHost['database'], transport: OutboxRelayHost['transport']): OutboxRelayHost {
  return { database, transport, hooks: { onCommitted: [], onShutdown: [] }, logger: silentLogger };
}

for (const target of await messagingTargets()) {
  describe(`messaging on ${target.name}`, () => {
    const env = useMessagingEnvironment(target);

    async function messagingRuntime(options: Parameters<typeof env.runtime>[0] = {}) {
      const transport = await env.transport();
      const runtime = await env.runtime({ ...options, transport });
      const messaging = await runtime.startMessaging({ embeddedWorker: false, relay: FAST_RELAY, consumers: FAST_CONSUMERS, inbox: FAST_INBOX });
      env.defer(() => messaging.stop());
      return { runtime, messaging, transport };
    }

    async function publishAnswer(transport: Transport, supervisorId: string, body: unknown, msgId: string): Promise<void> {
      await transport.publish(answersSubject(supervisorId, env.prefix()), typeof body === 'string' ? bytes(body) : bytes(body as object), { msgId });
    }

    it('questions reach a durable subscriber on supervisors.<id>.questions with the outbox msg_id, state changes on .state, in outbox order', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const recorder = await Recorder.start(transport, 'observer', withPrefix(ALL_SUPERVISOR_SUBJECTS, env.prefix()));
      env.defer(() => recorder.stop());

      const [first, second] = await Promise.all([runtime.spawn({ name: 'first' }), runtime.spawn({ name: 'second' })]);
      const q1 = await runtime.askQuestion(first.id, { question: 'Ship it?', choices: ['yes', 'no'] });
      const q2 = await runtime.askQuestion(second.id, { question: 'Which database?' });
      await runtime.askQuestion(first.id, { question: 'And the docs?' });
      await runtime.answerQuestion(first.id, q1.questionId, 'yes');
      expect(await messaging.relay!.drain()).toBe(true);

      const rows = await outboxRows(env.database());
      expect(rows.every((row) => row.sent)).toBe(true);
      const received = await recorder.waitFor(rows.length);
      expect(received).toHaveLength(rows.length);

      // Every row once, on its subject, with its msg_id as the message id and its payload as the body.
      const byMsgId = new Map(received.map((message) => [message.msgId, message]));
      for (const row of rows) {
        expect(byMsgId.get(row.msgId)).toMatchObject({ subject: row.subject, body: row.payload });
      }
      const question = received.find((message) => message.body.questionId === q2.questionId)!;
      expect(question.subject).toBe(questionsSubject(second.id, env.prefix()));
      expect(question.msgId).toMatch(new RegExp(`^${second.id}:\\d+:\\d+$`));
      expect(question.body).toMatchObject({ v: 1, supervisorId: second.id, question: 'Which database?', deliveryCount: 1, redelivery: false });
      const states = received.filter((message) => message.subject.endsWith(`${first.id}.state`)).map((message) => message.body.to);
      expect(states).toEqual(['initializing', 'idle', 'waiting_for_user']);

      // Per supervisor, arrival order is outbox order.
      const expected = bySupervisor(rows, (row) => row.supervisorId);
      const arrived = bySupervisor(received, (message) => parseSupervisorSubject(message.subject, env.prefix())!);
      expect(arrived).toEqual(expected);
    });

    it('a plain JSON answer is applied and acked; the same answer again changes nothing and is counted as a duplicate; a different second answer does not override the first', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'asks' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Proceed?' });
      expect(supervisor.state).toBe('waiting_for_user');

      await publishAnswer(transport, supervisor.id, `{"questionId":"${questionId}","answer":"yes"}`, 'human-1');
      await eventually('the answer to be applied', () => (supervisor.state === 'working' ? true : undefined));
      const stored = await runtime.describe(supervisor.id);
      expect(stored).toMatchObject({ state: 'working', pendingQuestions: [] });
      const stepAfterAnswer = stored.step;

      await publishAnswer(transport, supervisor.id, { questionId, answer: 'yes' }, 'human-2');
      await publishAnswer(transport, supervisor.id, { questionId, answer: 'no, wait' }, 'human-3');
      await eventually('both repeats to be counted', () => (messaging.consumers!.stats().answers.duplicates === 2 ? true : undefined));

      expect(supervisor.snapshot.context.answeredQuestionCount).toBe(1);
      expect(await runtime.questions(supervisor.id)).toEqual([expect.objectContaining({ id: questionId, answer: 'yes' })]);
      expect((await runtime.describe(supervisor.id)).step).toBe(stepAfterAnswer);
      // Past the ack wait: an unacked message would have come back by now and been counted again.
      await sleep(FAST_CONSUMERS.ackWaitMs + 400);
      // Three messages recorded for the owner (this daemon), one applied, two changed nothing.
      expect(messaging.consumers!.stats().answers).toEqual({ applied: 1, duplicates: 2, refused: 0, malformed: 0, unknown: 0, retried: 0, gaveUp: 0, recorded: 3 });
    });

    it('malformed answers and task events are terminated and counted, never redelivered, and good messages after them still apply', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'robust' });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'index the repo' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go?' });

      await publishAnswer(transport, supervisor.id, '{"questionId": "q", "answer": ', 'bad-json');
      await publishAnswer(transport, supervisor.id, { questionId }, 'missing-answer');
      await publishAnswer(transport, supervisor.id, { questionId: 7, answer: true }, 'wrong-types');
      await publishAnswer(transport, supervisor.id, { questionId, answer: 'yes', supervisorId: randomUUID() }, 'other-supervisor');
      const events = taskEventsSubject(taskId, env.prefix());
      await transport.publish(events, bytes('not json at all'), { msgId: 'event-bad-json' });
      await transport.publish(events, bytes({ taskId, type: 'exploded' }), { msgId: 'event-bad-type' });
      await transport.publish(events, bytes({ taskId: 'another-task', type: 'completed' }), { msgId: 'event-other-task' });
      await transport.publish(events, bytes({ taskId, type: 'progress', progress: 150 }), { msgId: 'event-bad-progress' });

      await publishAnswer(transport, supervisor.id, { questionId, answer: 'yes' }, 'good-answer');
      await transport.publish(events, bytes({ taskId, type: 'completed', result: 'indexed' }), { msgId: 'good-event' });
      await eventually('the good messages to apply', () => {
        const stats = messaging.consumers!.stats();
        return stats.answers.applied === 1 && stats.taskEvents.applied === 1 ? true : undefined;
      });
      expect(supervisor.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 1 });
      expect(await runtime.tasks(supervisor.id)).toEqual([expect.objectContaining({ id: taskId, status: 'completed', result: 'indexed' })]);
      expect(supervisor.snapshot.context.pendingQuestions).toEqual([]);

      await sleep(FAST_CONSUMERS.ackWaitMs + 400);
      const stats = messaging.consumers!.stats();
      expect(stats.answers).toMatchObject({ applied: 1, malformed: 4, retried: 0 });
      expect(stats.taskEvents).toMatchObject({ applied: 1, malformed: 4, retried: 0 });
    });

    it('poison answers (a subject that names no UUID, a NUL character or a lone surrogate the database cannot store) are terminated, never retried, and a good answer after 1,000 of them applies', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'poisoned' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Still listening?' });
      for (let n = 0; n < 990; n++) await publishAnswer(transport, `not-a-uuid-${n}`, { questionId: 'q', answer: 'x' }, `poison-subject-${n}`);
      for (let n = 0; n < 5; n++) await publishAnswer(transport, supervisor.id, { questionId, answer: `nul\u0000${n}` }, `poison-nul-${n}`);
      for (let n = 0; n < 5; n++) await publishAnswer(transport, supervisor.id, { questionId, answer: `half\ud800${n}` }, `poison-surrogate-${n}`);
      await publishAnswer(transport, supervisor.id, { questionId, answer: 'yes' }, 'good-after-poison');
      await eventually('the good answer to apply', () => (supervisor.state === 'working' ? true : undefined), 20_000);
      expect(supervisor.snapshot.context.answeredQuestionCount).toBe(1);
      expect(await runtime.questions(supervisor.id)).toEqual([expect.objectContaining({ id: questionId, answer: 'yes' })]);
      await sleep(FAST_CONSUMERS.ackWaitMs + 400);
      expect(messaging.consumers!.stats().answers).toMatchObject({ applied: 1, malformed: 1_000, retried: 0, recorded: 1 });
      // Each poison message is kept once, with why, for a person to look at; NUL is written out, not lost.
      // Written in the background, many per statement: wait until all 1,000 are there.
      await eventually('the dead letters to be written', async () => ((await runtime.deadLetters()).total === 1_000 ? true : undefined));
      const { deadLetters, total } = await runtime.deadLetters({ limit: 1_000 });
      expect(total).toBe(1_000);
      expect(deadLetters.find((letter) => letter.msgId === 'poison-subject-7')).toMatchObject({
        subject: `${env.prefix()}supervisors.not-a-uuid-7.answers`,
        reason: expect.stringMatching(/^malformed: subject names supervisor "not-a-uuid-7", which is not a UUID/),
        receivedBy: runtime.daemonId,
      });
      const nul = deadLetters.find((letter) => letter.msgId === 'poison-nul-3');
      expect(nul?.reason).toMatch(/NUL character/);
      expect(nul?.payload).toContain('nul\\u00003');
      const surrogate = deadLetters.find((letter) => letter.msgId === 'poison-surrogate-2');
      expect(surrogate?.reason).toMatch(/lone UTF-16 surrogate/);
      expect(surrogate?.payload).toContain('half\\ud8002');
    });

    it('a message that fails with an unexpected database error on every delivery is retried a bounded number of times, then dead-lettered; the next answer applies', async () => {
      const transport = await env.transport();
      const runtime = await env.runtime({ transport });
      const messaging = await runtime.startMessaging({ embeddedWorker: false, relay: FAST_RELAY, consumers: { ...FAST_CONSUMERS, maxUnexpectedFailures: 3 }, inbox: FAST_INBOX });
      env.defer(() => messaging.stop());
      // A real server-side error that is neither "database away" nor "content refused": a trigger that raises.
      await sql`CREATE FUNCTION refuse_explosive() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'explosive answer'; END $$`.execute(env.database().db);
      await sql`CREATE TRIGGER refuse_explosive BEFORE INSERT ON supervisor_inbox FOR EACH ROW WHEN (NEW.payload->>'answer' = 'explode') EXECUTE FUNCTION refuse_explosive()`.execute(env.database().db);
      const supervisor = await runtime.spawn({ name: 'unlucky' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Which way?' });
      await publishAnswer(transport, supervisor.id, { questionId, answer: 'explode' }, 'explosive-1');

      await eventually('the explosive answer to be given up', () => (messaging.consumers!.stats().answers.gaveUp === 1 ? true : undefined), 20_000);
      expect(messaging.consumers!.stats().answers).toMatchObject({ gaveUp: 1, retried: 2, recorded: 0 });
      await eventually('its dead letter', async () => ((await runtime.deadLetters()).total === 1 ? true : undefined));
      const [letter] = (await runtime.deadLetters()).deadLetters;
      expect(letter).toMatchObject({ msgId: 'explosive-1', deliveryCount: 3, reason: expect.stringMatching(/^gave up after 3 unexpected failures: .*explosive answer/) });
      expect(supervisor.state).toBe('waiting_for_user');

      await publishAnswer(transport, supervisor.id, { questionId, answer: 'left' }, 'good-after-explosive');
      await eventually('the good answer to apply', () => (supervisor.state === 'working' ? true : undefined), 20_000);
      // Terminated: never delivered again.
      await sleep(FAST_CONSUMERS.ackWaitMs + 400);
      expect(messaging.consumers!.stats().answers).toMatchObject({ gaveUp: 1, retried: 2, recorded: 1, applied: 1 });
    });

    it('an answer for an unknown supervisor and an event for an unknown task are terminated, counted and kept as dead letters', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      await publishAnswer(transport, randomUUID(), { questionId: 'q1', answer: 'yes' }, 'unknown-supervisor');
      await transport.publish(taskEventsSubject(randomUUID(), env.prefix()), bytes({ taskId: 'x', type: 'completed' }), { msgId: 'wrong-id' });
      const unknownTask = randomUUID();
      await transport.publish(taskEventsSubject(unknownTask, env.prefix()), bytes({ taskId: unknownTask, type: 'completed' }), { msgId: 'unknown-task' });
      await eventually('all three settled', () => {
        const stats = messaging.consumers!.stats();
        return stats.answers.unknown === 1 && stats.taskEvents.unknown === 1 && stats.taskEvents.malformed === 1 ? true : undefined;
      });
      await eventually('the dead letters to be written', async () => ((await runtime.deadLetters()).total === 3 ? true : undefined));
      const reasons = (await runtime.deadLetters()).deadLetters.map((letter) => [letter.msgId, letter.reason.split(':')[0]]);
      expect(reasons.sort()).toEqual([['unknown-supervisor', expect.stringMatching(/^unknown supervisor /)], ['unknown-task', `unknown task ${unknownTask}`], ['wrong-id', 'malformed']].sort());
    });

    it('scripted driver + task worker: two tasks finish through task events, the answer arrives over the transport, the supervisor completes', async () => {
      const transport = await env.transport();
      const runtime = await env.runtime({ defaultDriver: 'scripted', transport });
      const messaging = await runtime.startMessaging({
        embeddedWorker: true,
        worker: { minDurationMs: 20, maxDurationMs: 80, progressSteps: 2 },
        relay: FAST_RELAY,
        consumers: FAST_CONSUMERS,
        inbox: FAST_INBOX,
      });
      env.defer(() => messaging.stop());
      // The human: answers every question with its first choice.
      const human = await Recorder.start(transport, 'human', withPrefix(ALL_QUESTIONS, env.prefix()), async (message, received) => {
        const body = received.body as { supervisorId: string; questionId: string; choices: string[] | null };
        await publishAnswer(transport, body.supervisorId, { questionId: body.questionId, answer: body.choices?.[0] ?? 'ok' }, `answer:${body.questionId}`);
        await message.ack();
      });
      env.defer(() => human.stop());
      const spawns = await Recorder.start(transport, 'spawn-observer', taskSpawnSubject(env.prefix()));
      env.defer(() => spawns.stop());

      const supervisor = await runtime.spawn({ name: 'scripted' });
      await eventually(() => `completion (state ${supervisor.state})`, () => (supervisor.state === 'completed' ? true : undefined), 15_000);

      // Finished work has left the snapshot: counters there, rows in supervisor_tasks and supervisor_questions.
      expect(supervisor.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 2, failedTaskCount: 0, answeredQuestionCount: 1 });
      const tasks = await runtime.tasks(supervisor.id);
      expect(tasks).toHaveLength(2);
      expect(tasks.every((task) => task.status === 'completed' && task.result?.startsWith('done: '))).toBe(true);
      expect(await runtime.questions(supervisor.id)).toEqual([expect.objectContaining({ answer: 'incremental' })]);
      expect((await runtime.describe(supervisor.id)).state).toBe('completed');
      expect(spawns.received.map((message) => message.body.taskId).sort()).toEqual(tasks.map((task) => task.id).sort());
      expect(messaging.worker!.stats()).toMatchObject({ completed: 2, failed: 0, publishFailures: 0 });
      // 2 progress events and one outcome per task.
      expect(messaging.consumers!.stats().taskEvents).toMatchObject({ applied: 6, malformed: 0, unknown: 0 });
    });

    it('exactly once after a crash between commit and publish: rows committed with no relay running are each delivered once by the next relay', async () => {
      // The "crashed" daemon commits save points and never relays them.
      const crashed = await env.runtime();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const supervisor = await crashed.spawn({ name: `crashed ${i}` });
        ids.push(supervisor.id);
        await crashed.spawnTask(supervisor.id, { description: `task ${i}` });
        await crashed.askQuestion(supervisor.id, { question: `Question ${i}?` });
      }
      await crashed.shutdown({ closeDatabase: false, closeTransport: false });
      const rows = await outboxRows(env.database());
      expect(rows.length).toBeGreaterThanOrEqual(12);
      expect(rows.some((row) => row.sent)).toBe(false);

      const transport = await env.transport();
      const supervisorsSeen = await Recorder.start(transport, 'audit-supervisors', withPrefix(ALL_SUPERVISOR_SUBJECTS, env.prefix()));
      const tasksSeen = await Recorder.start(transport, 'audit-spawns', taskSpawnSubject(env.prefix()));
      env.defer(() => Promise.all([supervisorsSeen.stop(), tasksSeen.stop()]));

      const relay = startOutboxRelay(relayHost(env.database(), await env.transport()), FAST_RELAY);
      env.defer(() => relay.stop());
      expect(await relay.drain()).toBe(true);
      await eventually('every row to arrive', () => (supervisorsSeen.received.length + tasksSeen.received.length >= rows.length ? true : undefined));
      await sleep(200);

      const seen = [...supervisorsSeen.received, ...tasksSeen.received];
      expect(seen.map((message) => message.msgId).sort()).toEqual(rows.map((row) => row.msgId).sort());
      expect(relay.stats()).toMatchObject({ published: rows.length, duplicates: 0, failures: 0, unsentEstimate: 0 });
      expect((await outboxRows(env.database())).every((row) => row.sent)).toBe(true);
      expect(bySupervisor(supervisorsSeen.received, (message) => parseSupervisorSubject(message.subject, env.prefix())!)).toEqual(
        bySupervisor(
          rows.filter((row) => !row.subject.endsWith('tasks.spawn')),
          (row) => row.supervisorId,
        ),
      );
    });

    it('exactly once after a crash between publish and mark: rows published but not marked sent are published again, dropped as duplicates, and seen once', async () => {
      const crashed = await env.runtime();
      for (let i = 0; i < 3; i++) {
        const supervisor = await crashed.spawn({ name: `crashed ${i}` });
        await crashed.askQuestion(supervisor.id, { question: `First ${i}?` });
        await crashed.askQuestion(supervisor.id, { question: `Second ${i}?` });
      }
      await crashed.shutdown({ closeDatabase: false, closeTransport: false });
      const rows = await outboxRows(env.database());
      const transport = await env.transport();
      // The crashed relay got the first half of every supervisor's rows out, then died before marking them.
      const perSupervisor = bySupervisor(rows, (row) => row.supervisorId);
      const alreadyPublished = rows.filter((row) => {
        const own = perSupervisor.get(row.supervisorId)!;
        return own.indexOf(row.msgId) < own.length / 2;
      });
      for (const row of alreadyPublished) await transport.publish(row.subject, bytes(row.payload), { msgId: row.msgId });
      expect((await outboxRows(env.database())).some((row) => row.sent)).toBe(false);

      const seen = await Recorder.start(transport, 'audit', withPrefix(ALL_SUPERVISOR_SUBJECTS, env.prefix()));
      env.defer(() => seen.stop());
      const relay = startOutboxRelay(relayHost(env.database(), await env.transport()), FAST_RELAY);
      env.defer(() => relay.stop());
      expect(await relay.drain()).toBe(true);
      await seen.waitFor(rows.length);
      await sleep(200);

      expect(seen.received.map((message) => message.msgId).sort()).toEqual(rows.map((row) => row.msgId).sort());
      expect(relay.stats()).toMatchObject({ published: rows.length - alreadyPublished.length, duplicates: alreadyPublished.length });
      expect(bySupervisor(seen.received, (message) => parseSupervisorSubject(message.subject, env.prefix())!)).toEqual(perSupervisor);
    });

    it('two relays on one database and transport drain a shared backlog of 300 rows from 10 supervisors: each row published once, per-supervisor order kept', async () => {
      const prefix = env.prefix();
      const supervisors = Array.from({ length: 10 }, () => randomUUID());
      const backlog = Array.from({ length: 30 }, (_, n) =>
        supervisors.map((id) => ({ supervisor_id: id, subject: questionsSubject(id, prefix), payload: JSON.stringify({ n }), msg_id: `${id}:${n + 1}:0` })),
      ).flat();
      await env.database().db.insertInto('supervisor_outbox').values(backlog).execute();

      const transport = await env.transport();
      const seen = await Recorder.start(transport, 'audit', withPrefix(ALL_SUPERVISOR_SUBJECTS, prefix));
      env.defer(() => seen.stop());
      // The second relay is another daemon: on Postgres its own connection pool.
      const database = env.database();
      const otherDatabase = database.kind === 'postgres' ? await openDatabase({ databaseUrl: target.database.url, schema: database.schema!, poolSize: 2 }) : database;
      if (otherDatabase !== database) env.defer(() => otherDatabase.close());
      const relays = [startOutboxRelay(relayHost(database, transport), { batchSize: 5, pollIntervalMs: 20 }), startOutboxRelay(relayHost(otherDatabase, transport), { batchSize: 5, pollIntervalMs: 20 })];
      env.defer(() => Promise.all(relays.map((relay) => relay.stop())));

      await seen.waitFor(300, 20_000);
      expect((await Promise.all(relays.map((relay) => relay.drain()))).every(Boolean)).toBe(true);
      await sleep(200);

      expect(seen.received).toHaveLength(300);
      expect(new Set(seen.received.map((message) => message.msgId)).size).toBe(300);
      const stats = relays.map((relay) => relay.stats());
      expect(stats[0]!.published + stats[1]!.published).toBe(300);
      expect(stats.map((s) => s.duplicates)).toEqual([0, 0]);
      // Real concurrency on Postgres: small batches leave other supervisors' rows free, so both relays do part of the work.
      if (database.kind === 'postgres') expect(stats.every((s) => s.published > 0)).toBe(true);
      const order = new Map<string, number[]>();
      for (const message of seen.received) {
        const id = parseSupervisorSubject(message.subject, prefix)!;
        order.set(id, [...(order.get(id) ?? []), message.body.n as number]);
      }
      for (const id of supervisors) expect(order.get(id)).toEqual(Array.from({ length: 30 }, (_, n) => n));
    }, 30_000);

    it('on runtime shutdown the relay publishes what is still unsent, then stops', async () => {
      const transport = await env.transport();
      const runtime: SupervisorRuntime = await env.runtime({ transport });
      // A poll too slow to matter: only the shutdown drain can find a row no commit announced.
      const messaging = await runtime.startMessaging({ embeddedWorker: false, relay: { pollIntervalMs: 60_000 } });
      const seen = await Recorder.start(transport, 'audit', withPrefix(ALL_QUESTIONS, env.prefix()));
      env.defer(() => seen.stop());
      const supervisorId = randomUUID();
      await sleep(100);
      await env
        .database()
        .db.insertInto('supervisor_outbox')
        .values({ supervisor_id: supervisorId, subject: questionsSubject(supervisorId, env.prefix()), payload: JSON.stringify({ late: true }), msg_id: `${supervisorId}:9:0` })
        .execute();
      await sleep(100);
      expect((await outboxRows(env.database())).map((row) => row.sent)).toEqual([false]);

      await runtime.shutdown({ closeDatabase: false, closeTransport: false });
      expect((await outboxRows(env.database())).map((row) => row.sent)).toEqual([true]);
      expect((await seen.waitFor(1))[0]).toMatchObject({ msgId: `${supervisorId}:9:0`, body: { late: true } });
      expect(messaging.relay!.stats()).toMatchObject({ published: 1, unsentEstimate: 0 });
    });
  });
}
