// Sends every supervisor actor (and the restoration actor) to the Stately inspector when inspection is on.

import { createSkyInspector, createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';

/** false: off; { url }: a WebSocket inspector at that ws:// URL; 'sky': the Stately Sky inspector (needs internet). */
export type InspectOption = false | 'sky' | { url: string } | Observer<InspectionEvent>;

export interface RuntimeInspector {
  observer: Observer<InspectionEvent> | undefined;
  /** Where to look, for the log line. */
  description: string;
  stop(): void;
}

export function createRuntimeInspector(option: InspectOption | undefined): RuntimeInspector {
  if (!option) return { observer: undefined, description: 'off', stop: () => undefined };
  if (option === 'sky') {
    const inspector = createSkyInspector({ autoStart: true });
    return { observer: inspector.inspect, description: 'Stately Sky (link printed by @statelyai/inspect)', stop: () => inspector.stop() };
  }
  if ('url' in option) {
    const inspector = createWebSocketInspector({ url: option.url, autoStart: true });
    return { observer: inspector.inspect, description: `WebSocket inspector at ${option.url}`, stop: () => inspector.stop() };
  }
  return { observer: option, description: 'custom observer', stop: () => undefined };
}

/**
 * Whether a WebSocket inspector URL accepts connections, checked once with a TCP connect: null when it does, else
 * why not. The inspector's client retries by itself, so the daemon only warns; it never waits for the inspector.
 */
export async function probeInspector(url: string, timeoutMs = 2_000): Promise<string | null> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  const port = Number(target.port || (target.protocol === 'wss:' ? 443 : 80));
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: target.hostname, port });
    const done = (problem: string | null) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer from ${target.hostname}:${port} within ${timeoutMs} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (error: NodeJS.ErrnoException) => done(`${target.hostname}:${port}: ${error.code ?? error.message}`));
  });
}
