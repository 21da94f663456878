// The runtime's private host interface: what its own parts (restorer, lease keeper, inbox, outbox relay, inbound
// consumers) may use. It never leaves src/runtime: the API and library callers see only SupervisorRuntime.

import type { InspectionEvent, Observer } from 'xstate';
import type { SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { Database } from '../persistence/database.js';
import type { Transport } from '../transport/transport.js';
import type { CommittedStep, DurableSupervisor } from './durable-supervisor.js';
import type { Logger } from './logger.js';
import type { RegistryStore } from './registry.js';

/** Callbacks the runtime's parts attach to. */
export interface RuntimeHooks {
  onCommitted: Array<(supervisor: DurableSupervisor, step: CommittedStep) => void>;
  onShutdown: Array<() => Promise<void>>;
}

/** Where a supervisor sits in the ownership model: the epoch this daemon holds it at. */
export interface Placement {
  step: number;
  epoch: number;
  /** The checkpoint the stored row points to, when known (the next full save writes the one after it). */
  checkpointSeq?: number;
}

export interface RuntimeHost {
  readonly database: Database;
  readonly transport: Transport | undefined;
  readonly logger: Logger;
  readonly subjectPrefix: string;
  readonly daemonId: string;
  readonly hooks: RuntimeHooks;
  /** The live registry: supervisors running here and the daemon's warnings. */
  readonly registry: RegistryStore;
  readonly inspectObserver: Observer<InspectionEvent> | undefined;
  now(): Date;
  /** Resolves once this daemon holds its membership lease (every write names it). */
  ready(): Promise<void>;
  /** The running copy, if this daemon runs the supervisor (also while the restoration protocol works on it). */
  running(id: string): DurableSupervisor | undefined;
  /** True while the restoration protocol works on the supervisor: what comes from outside waits. */
  restoring(id: string): boolean;
  /** Put a validated snapshot to work, stored at `placement.step`, owned at `placement.epoch`. */
  adopt(snapshot: SupervisorSnapshot, placement: Placement, driverName: string): DurableSupervisor;
  /** Commit a brand-new snapshot (over whatever is stored, at a later step) and run it. */
  createFresh(initial: SupervisorSnapshot, driverName: string, placement: Placement): Promise<DurableSupervisor>;
  /** Stop the local copy after its queued saves; the row is left as it is. */
  stopLocal(id: string): Promise<void>;
  /** A restoration begins: queue the agent driver's callbacks and hold outside events until releaseDriver. */
  holdDriver(id: string): void;
  /** Run the queued callbacks in order and stop queueing; `discard` drops them (the restoration failed). */
  releaseDriver(id: string, options?: { discard?: boolean }): void;
  /**
   * A restoration of a supervisor that never started (nothing written after its restored state): the messages it took
   * in are read back and held for its driver, which hears them (onMessage) after the START the restoration gives it.
   * Called inside the hold, so no message is taken in meanwhile.
   */
  holdUnstartedMessages(id: string, driverName: string): Promise<void>;
}
