// The behaviour every Transport must have, as one suite run against each implementation (in-process bus, NATS JetStream).

import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidSubjectError, MalformedMessageError, TransportClosedError } from '../../src/transport/errors.js';
import { encodeMessage } from '../../src/transport/messages.js';
import {
  ALL_ANSWERS,
  ALL_TASK_EVENTS,
  answersSubject,
  questionsSubject,
  stateSubject,
  taskEventsSubject,
  taskSpawnSubject,
  withPrefix,
} from '../../src/transport/subjects.js';
import type { InboundMessage, SubscribeOptions, Subscription, Transport } from '../../src/transport/transport.js';

export interface ContractTarget {
  /** A fresh, not yet started transport, isolated from every other test's. */
  makeTransport(): Transport | Promise<Transport>;
  /** Remove what the transport left behind (streams on a shared server). Called after close(). */
  cleanup?(transport: Transport): Promise<void>;
}

const SHORT_ACK_WAIT_MS = 300;
const text = (m: InboundMessage) => new TextDecoder().decode(m.data);
const bytes = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records every delivery; the test decides how to settle each. */
class Collector {
  readonly received: InboundMessage[] = [];
  private waiters: Array<() => void> = [];
  constructor(private readonly settle: (m: InboundMessage) => Promise<void> = (m) => m.ack()) {}

  readonly handler = async (message: InboundMessage): Promise<void> => {
    this.received.push(message);
    this.waiters.forEach((w) => w());
    await this.settle(message);
  };

  texts(): string[] {
    return this.received.map(text);
  }

  async waitFor(count: number, timeoutMs = 5_000): Promise<InboundMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} deliveries, got ${this.received.length}: ${JSON.stringify(this.texts())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }
}

export function transportContract(name: string, target: ContractTarget): void {
  describe(`Transport contract: ${name}`, () => {
    const open: Transport[] = [];
    const subscriptions: Subscription[] = [];
    let counter = 0;

    async function started(): Promise<Transport> {
      const transport = await target.makeTransport();
      open.push(transport);
      await transport.start();
      return transport;
    }

    async function subscribe(transport: Transport, options: Partial<SubscribeOptions>, collector: Collector): Promise<Subscription> {
      const subscription = await transport.subscribe(
        { durable: 'contract', filterSubject: withPrefix(ALL_ANSWERS, transport.subjectPrefix), ackWaitMs: 5_000, ...options },
        collector.handler,
      );
      subscriptions.push(subscription);
      return subscription;
    }

    async function publish(transport: Transport, subject: string, body: string, msgId = `m${++counter}`) {
      return transport.publish(subject, bytes(body), { msgId });
    }

    afterEach(async () => {
      await Promise.all(subscriptions.splice(0).map((s) => s.stop()));
      for (const transport of open.splice(0)) {
        await transport.close();
        await target.cleanup?.(transport);
      }
    });

    it('a message published before anyone subscribes is delivered when the durable subscribes', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      const result = await transport.publish(answersSubject('s1', p), encodeMessage({ v: 1, questionId: 'q1', answer: 'yes' }), { msgId: 'answer-1' });
      expect(result).toEqual({ duplicate: false, seq: expect.any(Number) });

      const collector = new Collector();
      await subscribe(transport, {}, collector);
      const [message] = await collector.waitFor(1);
      expect(message!.subject).toBe(`${p}supervisors.s1.answers`);
      expect(message!.msgId).toBe('answer-1');
      expect(message!.deliveryCount).toBe(1);
      expect(message!.json()).toEqual({ v: 1, questionId: 'q1', answer: 'yes' });
    });

    it('consumerInfo says how much waits for a durable and whether anyone takes it: before, while held, after the acks', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      const filter = withPrefix(ALL_ANSWERS, p);
      // Another subject in the same stream is not counted for this filter.
      await publish(transport, questionsSubject('s1', p), 'not an answer');
      for (const body of ['a', 'b']) await publish(transport, answersSubject('s1', p), body);
      expect(await transport.consumerInfo('watched', filter)).toEqual({ exists: false, pending: 2, ackPending: 0, waiting: 0 });

      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const collector = new Collector(async (message) => {
        await held;
        await message.ack();
      });
      await subscribe(transport, { durable: 'watched' }, collector);
      await collector.waitFor(1);
      await vi.waitFor(async () => expect((await transport.consumerInfo('watched', filter)).ackPending).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
      release();
      await collector.waitFor(2);
      await vi.waitFor(
        async () => {
          const info = await transport.consumerInfo('watched', filter);
          expect(info).toMatchObject({ exists: true, pending: 0, ackPending: 0 });
          expect(info.waiting).toBeGreaterThan(0);
        },
        { timeout: 5_000 },
      );
    });

    it('a second publish with the same msgId is reported as duplicate and delivered once', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      const first = await publish(transport, answersSubject('s1', p), 'once', 'same-id');
      const second = await publish(transport, answersSubject('s1', p), 'once again', 'same-id');
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ duplicate: true, seq: first.seq });
      await publish(transport, answersSubject('s1', p), 'marker');

      const collector = new Collector();
      await subscribe(transport, {}, collector);
      await collector.waitFor(2);
      await sleep(100);
      expect(collector.texts()).toEqual(['once', 'marker']);
    });

    it('acked messages are not redelivered to the next subscriber of the same durable', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      for (const body of ['a', 'b', 'c']) await publish(transport, answersSubject('s1', p), body);
      const first = new Collector();
      const subscription = await subscribe(transport, { ackWaitMs: SHORT_ACK_WAIT_MS }, first);
      await first.waitFor(3);
      await subscription.stop();

      await publish(transport, answersSubject('s1', p), 'd');
      const second = new Collector();
      await subscribe(transport, { ackWaitMs: SHORT_ACK_WAIT_MS }, second);
      await second.waitFor(1);
      await sleep(SHORT_ACK_WAIT_MS * 2); // long enough for any unacked message to come back
      expect(first.texts()).toEqual(['a', 'b', 'c']);
      expect(second.texts()).toEqual(['d']);
    });

    it('a nak-ed message is redelivered with deliveryCount 2', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'retry me', 'nak-1');
      const collector = new Collector((m) => (m.deliveryCount === 1 ? m.nak() : m.ack()));
      await subscribe(transport, {}, collector);
      const [first, second] = await collector.waitFor(2);
      expect([first!.deliveryCount, second!.deliveryCount]).toEqual([1, 2]);
      expect(second!.msgId).toBe('nak-1');
      expect(text(second!)).toBe('retry me');
    });

    it('nak with a delay holds the message back for that long', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'later');
      const collector = new Collector((m) => (m.deliveryCount === 1 ? m.nak(400) : m.ack()));
      await subscribe(transport, {}, collector);
      await collector.waitFor(1);
      const nakAt = Date.now();
      await collector.waitFor(2);
      expect(Date.now() - nakAt).toBeGreaterThanOrEqual(300);
    });

    it('an unacked message goes to the next subscriber of the same durable after stop()', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'unfinished', 'u-1');
      const first = new Collector(async () => {}); // never settles
      const subscription = await subscribe(transport, { ackWaitMs: SHORT_ACK_WAIT_MS }, first);
      await first.waitFor(1);
      await subscription.stop();

      const second = new Collector();
      await subscribe(transport, { ackWaitMs: SHORT_ACK_WAIT_MS }, second);
      const [again] = await second.waitFor(1);
      expect(again!.msgId).toBe('u-1');
      expect(again!.deliveryCount).toBe(2);
    });

    it('a term-ed message is never redelivered', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'poison');
      await publish(transport, answersSubject('s1', p), 'fine');
      const collector = new Collector((m) => (text(m) === 'poison' ? m.term('not an answer') : m.ack()));
      await subscribe(transport, { ackWaitMs: SHORT_ACK_WAIT_MS }, collector);
      await collector.waitFor(2);
      await sleep(SHORT_ACK_WAIT_MS * 3);
      expect(collector.texts()).toEqual(['poison', 'fine']);
    });

    it('a handler that throws gets its message again', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'flaky');
      const collector = new Collector(async (m) => {
        if (m.deliveryCount === 1) throw new Error('database briefly down');
        await m.ack();
      });
      await subscribe(transport, {}, collector);
      const [, second] = await collector.waitFor(2);
      expect(second!.deliveryCount).toBe(2);
    });

    it('a wildcard filter receives only the subjects it matches', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, questionsSubject('s1', p), 'question');
      await publish(transport, stateSubject('s1', p), 'state');
      await publish(transport, answersSubject('s1', p), 'answer s1');
      await publish(transport, taskEventsSubject('task-1', p), 'event');
      await publish(transport, taskSpawnSubject(p), 'spawn');
      await publish(transport, answersSubject('s2', p), 'answer s2');

      const answers = new Collector();
      const events = new Collector();
      await subscribe(transport, { durable: 'answers', filterSubject: withPrefix(ALL_ANSWERS, p) }, answers);
      await subscribe(transport, { durable: 'events', filterSubject: withPrefix(ALL_TASK_EVENTS, p) }, events);
      await answers.waitFor(2);
      await events.waitFor(1);
      await sleep(200);
      expect(answers.received.map((m) => m.subject)).toEqual([`${p}supervisors.s1.answers`, `${p}supervisors.s2.answers`]);
      expect(events.received.map((m) => m.subject)).toEqual([`${p}tasks.task-1.events`]);
    });

    it('two durables on the same subjects each receive every message', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'shared');
      const one = new Collector();
      const two = new Collector();
      await subscribe(transport, { durable: 'one' }, one);
      await subscribe(transport, { durable: 'two' }, two);
      await one.waitFor(1);
      await two.waitFor(1);
      expect([one.texts(), two.texts()]).toEqual([['shared'], ['shared']]);
    });

    it('100 messages arrive in publish order, one handler call at a time', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      const bodies = Array.from({ length: 100 }, (_, i) => `n${i}`);
      for (const body of bodies) await publish(transport, answersSubject('s1', p), body);
      let inFlight = 0;
      let maxInFlight = 0;
      const collector = new Collector(async (m) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await Promise.resolve();
        inFlight -= 1;
        await m.ack();
      });
      await subscribe(transport, {}, collector);
      await collector.waitFor(100, 10_000);
      expect(collector.texts()).toEqual(bodies);
      expect(maxInFlight).toBe(1);
    });

    it('json() of a message that is not JSON throws MalformedMessageError', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await publish(transport, answersSubject('s1', p), 'not json {');
      const collector = new Collector((m) => m.term('not json'));
      await subscribe(transport, {}, collector);
      const [message] = await collector.waitFor(1);
      expect(() => message!.json()).toThrow(MalformedMessageError);
    });

    it('refuses subjects that belong to no stream', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await expect(publish(transport, `${p}elsewhere.s1.answers`, 'x')).rejects.toBeInstanceOf(InvalidSubjectError);
      await expect(publish(transport, withPrefix(ALL_ANSWERS, p), 'x')).rejects.toBeInstanceOf(InvalidSubjectError);
      await expect(publish(transport, answersSubject('s1', 'other-prefix.'), 'x')).rejects.toBeInstanceOf(InvalidSubjectError);
      await expect(transport.subscribe({ durable: 'x', filterSubject: `${p}>` }, async () => {})).rejects.toBeInstanceOf(InvalidSubjectError);
    });

    it('health is ok while open', async () => {
      const transport = await started();
      const health = await transport.health();
      expect(health.ok).toBe(true);
      expect(health.kind).toBe(transport.kind);
    });

    it('after close(), publish and subscribe reject with TransportClosedError and health is not ok', async () => {
      const transport = await started();
      const p = transport.subjectPrefix;
      await transport.close();
      await expect(publish(transport, answersSubject('s1', p), 'late')).rejects.toBeInstanceOf(TransportClosedError);
      await expect(transport.subscribe({ durable: 'late', filterSubject: withPrefix(ALL_ANSWERS, p) }, async () => {})).rejects.toBeInstanceOf(
        TransportClosedError,
      );
      expect((await transport.health()).ok).toBe(false);
    });
  });
}
