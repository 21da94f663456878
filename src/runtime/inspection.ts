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
