// GET /live: the runtime's registry as a Server-Sent Events stream (what the dashboard listens to). One `snapshot`
// event on connect (every supervisor this daemon runs, and its open warnings), then `changed` events carrying the
// entries that changed since the last one (coalesced, so a burst of save points is one event), and `warning` events
// when a warning is raised or cleared. A slow reader never grows a queue: changes wait in a map by id.

import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { RegistryEntry, RegistryWarning } from '../../runtime/registry.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';

export const LIVE_PATH = '/live';
/** Changes are sent at most this often. */
const FLUSH_MS = 100;
/** A comment line this often keeps proxies and the browser from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export interface LiveSnapshotEvent {
  daemonId: string;
  version: number;
  supervisors: RegistryEntry[];
  warnings: RegistryWarning[];
}

export interface LiveChangedEvent {
  version: number;
  /** Entries that changed (their newest state). */
  supervisors: RegistryEntry[];
  /** Ids that stopped running here (finished and stopped, handed to another daemon). */
  removed: string[];
}

export interface LiveWarningEvent {
  key: string;
  /** null: the warning cleared. */
  warning: RegistryWarning | null;
}

export function registerLiveRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  const open = new Set<ServerResponse>();
  // A stream never ends by itself: end them when the server closes, so close() does not wait on them.
  app.addHook('preClose', async () => {
    for (const response of open) response.end();
  });

  app.get(LIVE_PATH, async (request, reply) => {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    open.add(response);

    const send = (event: string, data: unknown): boolean => response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const registry = runtime.registry;
    const pending = new Map<string, RegistryEntry | null>();
    let version = registry.getSnapshot().context.version;
    let timer: NodeJS.Timeout | undefined;
    let blocked = false;

    const flush = () => {
      timer = undefined;
      if (blocked || pending.size === 0) return;
      const supervisors: RegistryEntry[] = [];
      const removed: string[] = [];
      for (const [id, entry] of pending) {
        if (entry) supervisors.push(entry);
        else removed.push(id);
      }
      pending.clear();
      const event: LiveChangedEvent = { version, supervisors, removed };
      if (!send('changed', event)) blocked = true;
    };
    const schedule = () => {
      timer ??= setTimeout(flush, FLUSH_MS);
    };
    response.on('drain', () => {
      blocked = false;
      schedule();
    });

    const changes = registry.on('changed', (change) => {
      pending.set(change.id, change.entry);
      version = change.version;
      schedule();
    });
    const warnings = registry.on('warning', (change) => {
      const event: LiveWarningEvent = { key: change.key, warning: change.warning };
      send('warning', event);
    });
    const keepalive = setInterval(() => response.write(': keep-alive\n\n'), KEEPALIVE_MS);
    keepalive.unref();

    const context = registry.getSnapshot().context;
    const snapshot: LiveSnapshotEvent = {
      daemonId: runtime.daemonId,
      version: context.version,
      supervisors: Object.values(context.supervisors),
      warnings: Object.values(context.warnings),
    };
    // Tells EventSource clients how long to wait before reconnecting after the stream drops.
    response.write('retry: 1000\n\n');
    send('snapshot', snapshot);

    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      open.delete(response);
      changes.unsubscribe();
      warnings.unsubscribe();
      clearInterval(keepalive);
      clearTimeout(timer);
    };
    request.raw.on('close', close);
    response.on('close', close);
  });
}
