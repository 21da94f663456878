// GET /live: the registry as Server-Sent Events, over a real socket (inject cannot show a stream that stays open).

import { describe, expect, it, vi } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import type { LiveChangedEvent, LiveSnapshotEvent, LiveWarningEvent } from '../../src/api/routes/live.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

interface Received {
  event: string;
  data: unknown;
}

/** Reads an SSE stream into `events`; `until` resolves once a received event matches. */
async function openStream(url: string, token: string) {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
  const events: Received[] = [];
  const waiters: Array<() => void> = [];
  let ended = false;
  const done = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          for (const wake of waiters.splice(0)) wake();
        }
      }
    } catch {
      // aborted by the test
    }
    ended = true;
    for (const wake of waiters.splice(0)) wake();
  })();
  async function until<T>(match: (event: Received) => T | undefined, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const event of events) {
        const found = match(event);
        if (found !== undefined) return found;
      }
      if (ended) throw new Error(`stream ended before a matching event; got ${JSON.stringify(events)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  return { response, events, until, done, isEnded: () => ended, close: () => controller.abort() };
}

const pglite = (await databaseTargets()).find((target) => target.name === 'pglite')!;

describe('GET /live', () => {
  const database = useIsolatedDatabase(pglite);

  it('sends a snapshot of the registry, then each change (coalesced), then warnings; needs the token; ends when the server closes', async () => {
    const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
    const app = await createApiServer(runtime, { token: 'secret' });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const before = await runtime.spawn({ name: 'already-running' });
      expect((await fetch(`${address}/live`)).status).toBe(401);

      const stream = await openStream(`${address}/live`, 'secret');
      expect(stream.response.status).toBe(200);
      expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const snapshot = await stream.until((e) => (e.event === 'snapshot' ? (e.data as LiveSnapshotEvent) : undefined));
      expect(snapshot.daemonId).toBe(runtime.daemonId);
      expect(snapshot.supervisors.map((entry) => [entry.id, entry.name, entry.state])).toEqual([[before.id, 'already-running', 'idle']]);
      expect(snapshot.warnings).toEqual([]);

      const asking = await runtime.spawn({ name: 'asking' });
      const { questionId } = await runtime.askQuestion(asking.id, { question: 'Go on?' });
      const waiting = await stream.until((e) => {
        if (e.event !== 'changed') return undefined;
        return (e.data as LiveChangedEvent).supervisors.find((entry) => entry.id === asking.id && entry.state === 'waiting_for_user');
      });
      expect(waiting).toMatchObject({ name: 'asking', pendingQuestionCount: 1 });
      // Spawn, START and the question are three save points within one flush interval at most a few events, not one per
      // registry change: the stream coalesces.
      const changedEvents = stream.events.filter((e) => e.event === 'changed');
      expect(changedEvents.length).toBeLessThanOrEqual(3);
      expect(changedEvents.every((e) => !('type' in ((e.data as LiveChangedEvent).supervisors[0] ?? {})))).toBe(true);

      await runtime.answerQuestion(asking.id, questionId, 'yes');
      await stream.until((e) => (e.event === 'changed' ? (e.data as LiveChangedEvent).supervisors.find((entry) => entry.id === asking.id && entry.state === 'working') : undefined));

      await runtime.stop(before.id);
      await stream.until((e) => (e.event === 'changed' && (e.data as LiveChangedEvent).removed.includes(before.id) ? true : undefined));

      runtime.registry.trigger.warn({ key: 'test-warning', message: 'something to look at', since: new Date().toISOString(), detail: { count: 1 } });
      const raised = await stream.until((e) => (e.event === 'warning' ? (e.data as LiveWarningEvent) : undefined));
      expect(raised).toMatchObject({ key: 'test-warning', warning: { message: 'something to look at', detail: { count: 1 } } });
      runtime.registry.trigger.clearWarning({ key: 'test-warning' });
      await stream.until((e) => (e.event === 'warning' && (e.data as LiveWarningEvent).warning === null ? true : undefined));

      // Closing the server ends the stream instead of waiting on it.
      const closing = Date.now();
      await app.close();
      await stream.done;
      expect(stream.isEnded()).toBe(true);
      expect(Date.now() - closing).toBeLessThan(5_000);
    } finally {
      await app.close();
      await runtime.shutdown({ closeDatabase: false });
    }
  });

  it('a reader that goes away is forgotten: the registry keeps no listener for it', async () => {
    const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
    const app = await createApiServer(runtime, { token: 'secret' });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    // Count the stream's listeners on the registry.
    const registry = runtime.registry;
    const on = registry.on.bind(registry);
    let listeners = 0;
    registry.on = ((type: Parameters<typeof on>[0], handler: Parameters<typeof on>[1]) => {
      listeners += 1;
      const subscription = on(type, handler);
      return { unsubscribe: () => { listeners -= 1; subscription.unsubscribe(); } };
    }) as typeof registry.on;
    try {
      const stream = await openStream(`${address}/live`, 'secret');
      await stream.until((e) => (e.event === 'snapshot' ? true : undefined));
      expect(listeners).toBe(2);
      stream.close();
      await stream.done;
      await vi.waitFor(() => expect(listeners).toBe(0));
      // Changes after the reader left go nowhere, and a new reader starts from a full snapshot.
      for (let i = 0; i < 5; i++) await runtime.spawn({ name: `after-${i}` });
      const second = await openStream(`${address}/live`, 'secret');
      const snapshot = await second.until((e) => (e.event === 'snapshot' ? (e.data as LiveSnapshotEvent) : undefined));
      expect(snapshot.supervisors).toHaveLength(5);
      second.close();
      await second.done;
    } finally {
      await app.close();
      await runtime.shutdown({ closeDatabase: false });
    }
  });
});
