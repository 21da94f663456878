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
  supervisors: Record<string, RegistryEntry>;
}

export function createRegistryStore() {
  return createStore({
    context: { supervisors: {} } as RegistryContext,
    on: {
      upsert: (context, entry: RegistryEntry) => ({ supervisors: { ...context.supervisors, [entry.id]: entry } }),
      remove: (context, event: { id: string }) => {
        const { [event.id]: _removed, ...rest } = context.supervisors;
        return { supervisors: rest };
      },
    },
  });
}

export type RegistryStore = ReturnType<typeof createRegistryStore>;
