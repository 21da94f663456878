// The live registry of supervisors, an @xstate/store store that the API and the dashboard read and subscribe to.

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

export interface RegistryContext {
  /** Entries by supervisor id. Updated in place: read it from the newest snapshot, do not keep an old one to diff. */
  supervisors: Record<string, RegistryEntry>;
  /** Bumped by every change, so each change is a new snapshot that subscribers hear. */
  version: number;
}

export function createRegistryStore() {
  return createStore({
    context: { supervisors: {}, version: 0 } as RegistryContext,
    on: {
      // Copying the record on every save point made N supervisors cost O(N²) (96 ms of a 300-supervisor restore):
      // the entries object is shared between snapshots and only the snapshot itself is new.
      upsert: (context, entry: RegistryEntry) => {
        context.supervisors[entry.id] = entry;
        return { supervisors: context.supervisors, version: context.version + 1 };
      },
      remove: (context, event: { id: string }) => {
        delete context.supervisors[event.id];
        return { supervisors: context.supervisors, version: context.version + 1 };
      },
    },
  });
}

export type RegistryStore = ReturnType<typeof createRegistryStore>;
