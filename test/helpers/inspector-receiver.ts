// A local WebSocket server standing in for the Stately inspector: it keeps every JSON message an inspected runtime sends.

import { WebSocketServer, type RawData } from 'ws';

/** One message of @statelyai/inspect's WebSocket adapter (`@xstate.actor`, `@xstate.snapshot`, `@xstate.event`). */
export interface InspectorMessage {
  type: string;
  sessionId?: string;
  name?: string;
  event?: { type: string; [key: string]: unknown };
  snapshot?: { value?: unknown; status?: string; context?: Record<string, unknown> };
  [key: string]: unknown;
}

export interface InspectorReceiver {
  /** ws://127.0.0.1:<port>, to pass as `inspect: { url }`. */
  url: string;
  messages: InspectorMessage[];
  /** Resolves with the first message (already received or still to come) that matches. */
  waitFor(predicate: (message: InspectorMessage) => boolean, timeoutMs?: number): Promise<InspectorMessage>;
  close(): Promise<void>;
}

function parse(data: RawData): InspectorMessage | null {
  const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? (value as InspectorMessage) : null;
  } catch {
    return null;
  }
}

export async function startInspectorReceiver(): Promise<InspectorReceiver> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const messages: InspectorMessage[] = [];
  const waiters = new Set<{ predicate: (message: InspectorMessage) => boolean; resolve: (message: InspectorMessage) => void }>();
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const message = parse(data);
      if (!message) return;
      messages.push(message);
      for (const waiter of waiters) {
        if (waiter.predicate(message)) {
          waiters.delete(waiter);
          waiter.resolve(message);
        }
      }
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the inspector receiver has no TCP address');
  return {
    url: `ws://127.0.0.1:${address.port}`,
    messages,
    waitFor(predicate, timeoutMs = 5_000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (message: InspectorMessage) => {
            clearTimeout(timer);
            resolve(message);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching inspector message within ${timeoutMs} ms; received types: ${[...new Set(messages.map((m) => m.type))].join(', ') || 'none'}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
