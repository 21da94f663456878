// The live registry of supervisors, an @xstate/store store: the API's live stream (GET /live) and through it the
// dashboard read it. It holds the supervisors this daemon runs and the daemon's own warnings.

import { createStore } from '@xstate/store';
import type { SupervisorState } from '../domain/supervisor-state.js';

export interface RegistryEntry {
  id: string;
  name: string;
  state: SupervisorState;
  phase: string;
  activity: string | null;
  progress: number;
  pendingQuestionCount: number;
  runningTaskCount: number;
  restorationCount: number;
  /** True while the last save point failed and the supervisor waits for the database. */
  degraded: boolean;
  updatedAt: string;
}

/** Something about the daemon an operator should act on, shown as a badge on the dashboard until it clears. */
export interface RegistryWarning {
  /** Stable key: one warning per key (e.g. `no-task-worker`). */
  key: string;
  message: string;
  since: string;
  /** Numbers behind the message (e.g. how many tasks wait), for the page and for scripts. */
  detail: Record<string, number | string | null>;
}

export interface RegistryContext {
  /** Entries by supervisor id. Updated in place: read it from the newest snapshot, do not keep an old one to diff. */
  supervisors: Record<string, RegistryEntry>;
  /** Open warnings by key. */
  warnings: Record<string, RegistryWarning>;
  /** Bumped by every change, so each change is a new snapshot that subscribers hear. */
  version: number;
}

/** What `store.on('changed' | 'warning', …)` hears: which entry changed (null entry: it left this daemon). */
export type RegistryEmitted =
  | { type: 'changed'; id: string; entry: RegistryEntry | null; version: number }
  | { type: 'warning'; key: string; warning: RegistryWarning | null; version: number };

export function createRegistryStore() {
  return createStore<
    RegistryContext,
    { upsert: RegistryEntry; remove: { id: string }; warn: RegistryWarning; clearWarning: { key: string } },
    { changed: Omit<Extract<RegistryEmitted, { type: 'changed' }>, 'type'>; warning: Omit<Extract<RegistryEmitted, { type: 'warning' }>, 'type'> }
  >({
    context: { supervisors: {}, warnings: {}, version: 0 },
    on: {
      // Copying the record on every save point made N supervisors cost O(N²) (96 ms of a 300-supervisor restore):
      // the entries object is shared between snapshots and only the snapshot itself is new.
      upsert: (context, event, enqueue) => {
        const { type: _type, ...entry } = event as RegistryEntry & { type?: string };
        context.supervisors[entry.id] = entry;
        const version = context.version + 1;
        enqueue.emit.changed({ id: entry.id, entry, version });
        return { ...context, version };
      },
      remove: (context, event, enqueue) => {
        if (!(event.id in context.supervisors)) return context;
        delete context.supervisors[event.id];
        const version = context.version + 1;
        enqueue.emit.changed({ id: event.id, entry: null, version });
        return { ...context, version };
      },
      warn: (context, event, enqueue) => {
        const { type: _type, ...warning } = event as RegistryWarning & { type?: string };
        const previous = context.warnings[warning.key];
        // The same warning again keeps its first `since`; only a changed message or detail is news.
        const next = previous ? { ...warning, since: previous.since } : warning;
        if (previous && previous.message === next.message && JSON.stringify(previous.detail) === JSON.stringify(next.detail)) return context;
        const version = context.version + 1;
        enqueue.emit.warning({ key: warning.key, warning: next, version });
        return { ...context, warnings: { ...context.warnings, [warning.key]: next }, version };
      },
      clearWarning: (context, event, enqueue) => {
        if (!(event.key in context.warnings)) return context;
        const { [event.key]: _cleared, ...warnings } = context.warnings;
        const version = context.version + 1;
        enqueue.emit.warning({ key: event.key, warning: null, version });
        return { ...context, warnings, version };
      },
    },
  });
}

export type RegistryStore = ReturnType<typeof createRegistryStore>;
