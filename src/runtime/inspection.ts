// Sends every supervisor actor (and the restoration actor) to the Stately inspector when inspection is on.

import type { InspectionEvent, Observer } from 'xstate';

type InspectLibrary = typeof import('@statelyai/inspect');

/** false: off; { url }: a WebSocket inspector at that ws:// URL; 'sky': the Stately Sky inspector (needs internet). */
export type InspectOption = false | 'sky' | { url: string } | Observer<InspectionEvent>;

export interface RuntimeInspector {
  observer: Observer<InspectionEvent> | undefined;
  /** Where to look, for the log line. */
  description: string;
  stop(): void;
}

/**
 * An inspector from @statelyai/inspect, loaded on first use (it and its WebSocket client cost a start that does not
 * inspect): events that arrive while it loads are kept, in order, and handed over once it is there.
 */
function loadedInspector(create: (library: InspectLibrary) => { inspect: Observer<InspectionEvent>; stop(): void }, description: string, onLoadError: (error: unknown) => void): RuntimeInspector {
  let inspector: { inspect: Observer<InspectionEvent>; stop(): void } | undefined;
  let stopped = false;
  let waiting: InspectionEvent[] | null = [];
  import('@statelyai/inspect').then(
    (library) => {
      const events = waiting ?? [];
      waiting = null;
      if (stopped) return;
      inspector = create(library);
      for (const event of events) inspector.inspect.next?.(event);
    },
    (error: unknown) => {
      waiting = null;
      onLoadError(error);
    },
  );
  return {
    observer: {
      next: (event) => {
        if (inspector) inspector.inspect.next?.(event);
        else waiting?.push(event);
      },
    },
    description,
    stop: () => {
      stopped = true;
      waiting = null;
      inspector?.stop();
    },
  };
}

/** `onLoadError`: @statelyai/inspect could not be loaded (nothing is inspected then; the runtime runs on). */
export function createRuntimeInspector(option: InspectOption | undefined, onLoadError: (error: unknown) => void = () => undefined): RuntimeInspector {
  if (!option) return { observer: undefined, description: 'off', stop: () => undefined };
  if (option === 'sky') {
    return loadedInspector((library) => library.createSkyInspector({ autoStart: true }), 'Stately Sky (link printed by @statelyai/inspect)', onLoadError);
  }
  if ('url' in option) {
    return loadedInspector((library) => library.createWebSocketInspector({ url: option.url, autoStart: true }), `WebSocket inspector at ${option.url}`, onLoadError);
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
