// In-process bus behaviour beyond the shared contract: the dedup window, maxDeliver and retention, on a fake clock.

import { afterEach, describe, expect, it } from 'vitest';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { ALL_ANSWERS, answersSubject } from '../../src/transport/subjects.js';
import type { InboundMessage, Subscription, Transport } from '../../src/transport/transport.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('in-process bus', () => {
  let clock = 1_000_000;
  const warnings: string[] = [];
  const logger = { info: () => {}, warn: (_: object, message: string) => warnings.push(message), error: () => {} };
  const cleanup: Array<Transport | Subscription> = [];

  function bus(options: { dedupWindowMs?: number; maxAgeMs?: number } = {}): Transport {
    const transport = createInProcessBus({ ...options, logger, now: () => clock });
    cleanup.push(transport);
    return transport;
  }

  afterEach(async () => {
    for (const item of cleanup.splice(0).reverse()) await ('close' in item ? item.close() : item.stop());
    warnings.length = 0;
  });

  it('forgets a msgId once the dedup window has passed', async () => {
    const transport = bus({ dedupWindowMs: 1_000 });
    const first = await transport.publish(answersSubject('s1'), bytes('a'), { msgId: 'x' });
    clock += 999;
    expect(await transport.publish(answersSubject('s1'), bytes('a'), { msgId: 'x' })).toEqual({ duplicate: true, seq: first.seq });
    clock += 2;
    expect(await transport.publish(answersSubject('s1'), bytes('a'), { msgId: 'x' })).toEqual({ duplicate: false, seq: first.seq + 1 });
  });

  it('drops a message with a warning after maxDeliver deliveries without an ack', async () => {
    const transport = bus();
    await transport.publish(answersSubject('s1'), bytes('never acked'), { msgId: 'p' });
    const deliveries: number[] = [];
    const subscription = await transport.subscribe({ durable: 'd', filterSubject: ALL_ANSWERS, maxDeliver: 3 }, async (m: InboundMessage) => {
      deliveries.push(m.deliveryCount);
      await m.nak();
    });
    cleanup.push(subscription);
    await sleep(50);
    expect(deliveries).toEqual([1, 2, 3]);
    expect(warnings).toContain('message dropped after maxDeliver deliveries without an ack');
  });

  it('keeps a copy of the published bytes, so the publisher may reuse its buffer', async () => {
    const transport = bus();
    const buffer = bytes('original');
    await transport.publish(answersSubject('s1'), buffer, { msgId: 'b' });
    buffer.fill(0);
    const received: string[] = [];
    cleanup.push(
      await transport.subscribe({ durable: 'd', filterSubject: ALL_ANSWERS }, async (m) => {
        received.push(new TextDecoder().decode(m.data));
        await m.ack();
      }),
    );
    await sleep(20);
    expect(received).toEqual(['original']);
  });

  it('drops messages older than maxAge before a late durable reads them', async () => {
    const transport = bus({ maxAgeMs: 1_000 });
    await transport.publish(answersSubject('s1'), bytes('old'), { msgId: 'old' });
    clock += 1_500;
    await transport.publish(answersSubject('s1'), bytes('new'), { msgId: 'new' });
    const received: string[] = [];
    cleanup.push(
      await transport.subscribe({ durable: 'late', filterSubject: ALL_ANSWERS }, async (m) => {
        received.push(new TextDecoder().decode(m.data));
        await m.ack();
      }),
    );
    await sleep(20);
    expect(received).toEqual(['new']);
  });
});
