// The NATS transport across a server restart: unhealthy and failing fast while down, then back with nothing lost.

import { mkdir, rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { TransportUnavailableError } from '../../src/transport/errors.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { ALL_ANSWERS, answersSubject, withPrefix } from '../../src/transport/subjects.js';
import type { InboundMessage } from '../../src/transport/transport.js';
import { natsServerBinary, startNatsServer } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';

const gate = serverGate('nats-server binary', natsServerBinary() !== null, 'install nats-server or set NATS_SERVER_BIN to run the NATS fault suites');

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (m: InboundMessage) => new TextDecoder().decode(m.data);
/** A prefix, like a deployment would use; each test has a server of its own anyway. */
const PREFIX = 'fault.';
const quietLogger = { info: () => {}, warn: () => {}, error: () => {} };

async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

(gate.run ? describe : describe.skip)('NATS transport across a server restart', () => {
  const cleanup: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('start() fails fast with TransportUnavailableError when no server listens', async () => {
    const unreachable = createNatsTransport({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 1_000, logger: quietLogger });
    const startedAt = Date.now();
    await expect(unreachable.start()).rejects.toThrow(TransportUnavailableError);
    await expect(unreachable.start()).rejects.toThrow(/check that NATS_URL points at a running nats-server started with -js/i);
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    await unreachable.close();
  });

  it.each([
    ['stopped', 'stop'],
    ['killed (SIGKILL)', 'kill'],
  ] as const)('while the server is %s: unhealthy, publishes fail fast; after restart it recovers without losing messages', async (_, how) => {
    const server = await startNatsServer();
    cleanup.push(() => server.dispose());
    const t = createNatsTransport({
      servers: server.url,
      subjectPrefix: PREFIX,
      reconnectTimeWaitMs: 200,
      publishTimeoutMs: 2_000,
      logger: quietLogger,
    });
    cleanup.push(() => t.close());
    await t.start();

    const received: string[] = [];
    await t.subscribe({ durable: 'live', filterSubject: withPrefix(ALL_ANSWERS, PREFIX), ackWaitMs: 2_000 }, async (m) => {
      received.push(text(m));
      await m.ack();
    });
    for (const body of ['before-1', 'before-2', 'before-3']) {
      await t.publish(answersSubject('s1', PREFIX), bytes(body), { msgId: body });
    }
    await eventually('the live subscriber to get the messages published before the stop', () => (received.length === 3 ? true : undefined), 5_000);

    await server[how]();
    const down = await eventually('health to report the outage', async () => {
      const health = await t.health();
      return health.ok ? undefined : health;
    }, 3_000);
    expect(down.detail).toMatch(/disconnected|not answering/);

    const publishStartedAt = Date.now();
    await expect(t.publish(answersSubject('s1', PREFIX), bytes('during'), { msgId: 'during' })).rejects.toBeInstanceOf(TransportUnavailableError);
    expect(Date.now() - publishStartedAt).toBeLessThan(3_000);

    await server.start();
    await eventually('health to recover', async () => ((await t.health()).ok ? true : undefined), 10_000);
    await t.publish(answersSubject('s1', PREFIX), bytes('after-1'), { msgId: 'after-1' });
    await eventually('the live subscriber to get a message published after the restart', () => (received.includes('after-1') ? true : undefined), 8_000);
    if (how === 'stop') {
      expect(received).toEqual(['before-1', 'before-2', 'before-3', 'after-1']);
    } else {
      // A crash can lose the consumer's newest acks (the server stores them asynchronously): redelivered, never lost.
      expect([...new Set(received)]).toEqual(['before-1', 'before-2', 'before-3', 'after-1']);
    }

    // A durable that first subscribes now finds everything the stream acked before the stop, and nothing twice.
    const late: string[] = [];
    await t.subscribe({ durable: 'late', filterSubject: withPrefix(ALL_ANSWERS, PREFIX) }, async (m) => {
      late.push(text(m));
      await m.ack();
    });
    await eventually('the late subscriber to read the whole stream', () => (late.length >= 4 ? true : undefined), 5_000);
    expect(late).toEqual(['before-1', 'before-2', 'before-3', 'after-1']);
  }, 30_000);

  it('a server that comes back without its store gets the streams and consumers re-created', async () => {
    const server = await startNatsServer();
    cleanup.push(() => server.dispose());
    const t = createNatsTransport({ servers: server.url, subjectPrefix: PREFIX, reconnectTimeWaitMs: 200, logger: quietLogger });
    cleanup.push(() => t.close());
    await t.start();
    const received: string[] = [];
    await t.subscribe({ durable: 'live', filterSubject: withPrefix(ALL_ANSWERS, PREFIX) }, async (m) => {
      received.push(text(m));
      await m.ack();
    });
    await t.publish(answersSubject('s1', PREFIX), bytes('lost with the store'), { msgId: 'old' });
    await eventually('the first message', () => (received.length === 1 ? true : undefined), 5_000);

    await server.stop();
    await rm(server.storeDir, { recursive: true, force: true });
    await mkdir(server.storeDir);
    await server.start();
    await eventually('health to recover', async () => ((await t.health()).ok ? true : undefined), 10_000);

    await t.publish(answersSubject('s1', PREFIX), bytes('after the wipe'), { msgId: 'new' });
    await eventually('the re-created consumer to deliver', () => (received.length === 2 ? true : undefined), 8_000);
    expect(received).toEqual(['lost with the store', 'after the wipe']);
  }, 30_000);
});
