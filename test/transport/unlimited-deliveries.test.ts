import { describe, expect, it } from 'vitest';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';

describe('in-process bus with maxDeliver -1', () => {
  it('keeps redelivering a nak\'d message however many times, like JetStream with max_deliver -1', async () => {
    const bus = createInProcessBus({ logger: { info: () => {}, warn: () => {}, error: () => {} } });
    await bus.start();
    await bus.publish('supervisors.s1.answers', new TextEncoder().encode('{}'), { msgId: 'm1' });
    const deliveries: number[] = [];
    const done = new Promise<void>((resolve) => {
      void bus.subscribe({ durable: 'patient', filterSubject: 'supervisors.*.answers', maxDeliver: -1 }, async (message) => {
        deliveries.push(message.deliveryCount);
        if (message.deliveryCount < 40) await message.nak(0);
        else {
          await message.ack();
          resolve();
        }
      });
    });
    await done;
    expect(deliveries).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
    await bus.close();
  });
});
