// The JSON the API answers with; the CLI reads the same types, so the two cannot drift apart.

import { DatabaseUnavailableError } from '../domain/errors.js';
import type { SupervisorState } from '../domain/supervisor-state.js';
import { SUPERVISOR_MACHINE_VERSION } from '../machines/supervisor-machine.js';
import type { DurableSupervisor } from '../runtime/durable-supervisor.js';
import { stateColumns } from '../runtime/save-plan.js';
import type { CheckpointRecord, RuntimeHealth, SupervisorDetailedState, SupervisorRuntime } from '../runtime/supervisor-runtime.js';

/** The stored detailed state plus whether this daemon runs the supervisor right now. */
export interface SupervisorView extends SupervisorDetailedState {
  live: boolean;
  /**
   * Present (false) only on a reply to a write that committed while the database could not be read back: the state is
   * the committed one this daemon holds, and `conversationRef`, `createdAt` and `updatedAt` are its own best knowledge.
   */
  readBack?: false;
}

export interface InvalidSupervisorView {
  id: string;
  problems: string[];
}

export interface SupervisorListResponse {
  supervisors: SupervisorView[];
  /** Rows whose stored state is not the shape the code expects; listed so one bad row hides nothing. */
  invalid: InvalidSupervisorView[];
  /** More supervisors follow: pass this as `?after=` for the next page (null on the last page). */
  next: string | null;
  /** Supervisors (valid and invalid) on every page with this filter, counted when this page was read. */
  total: number;
}

export interface QuestionAskedResponse {
  questionId: string;
  supervisor: SupervisorView;
}

export interface TaskResponse {
  taskId: string;
  supervisor: SupervisorView;
}

export interface CheckpointView {
  seq: number;
  step: number;
  reason: string;
  state: SupervisorState;
  machineVersion: number;
  createdAt: string;
  /** Only with `?snapshots=true`. */
  snapshot?: unknown;
}

export interface CheckpointListResponse {
  checkpoints: CheckpointView[];
}

export type HealthResponse = RuntimeHealth;

export function supervisorView(runtime: SupervisorRuntime, state: SupervisorDetailedState): SupervisorView {
  return { ...state, live: runtime.get(state.id) !== undefined };
}

/**
 * The reply to a write that committed: a fresh read of the stored state, or, when the database cannot be read back
 * (it went away just after the commit), the committed state this daemon holds. A committed write is never answered
 * with a 503 that says nothing was written.
 */
export async function describeAfterCommit(runtime: SupervisorRuntime, id: string): Promise<SupervisorView> {
  try {
    return await describeSupervisor(runtime, id);
  } catch (error) {
    const running = runtime.get(id);
    if (!(error instanceof DatabaseUnavailableError) || !running) throw error;
    return committedView(runtime, running);
  }
}

/** A supervisor's committed state as this daemon holds it (no database read). */
export function committedView(runtime: SupervisorRuntime, supervisor: DurableSupervisor): SupervisorView {
  const { snapshot, step, checkpointSeq, committedAt } = supervisor.committed;
  return {
    id: supervisor.id,
    ...stateColumns(snapshot),
    owner: runtime.daemonId,
    epoch: supervisor.epoch,
    conversationRef: null,
    step,
    checkpointSeq: checkpointSeq ?? 0,
    machineVersion: SUPERVISOR_MACHINE_VERSION,
    driver: supervisor.driverName,
    createdAt: snapshot.context.createdAt,
    updatedAt: (committedAt ?? new Date()).toISOString(),
    live: !supervisor.stopped,
    readBack: false,
  };
}

/** A fresh read of the stored state (so the answer reflects what committed), marked live or not. */
export async function describeSupervisor(runtime: SupervisorRuntime, id: string): Promise<SupervisorView> {
  return supervisorView(runtime, await runtime.describe(id));
}

export function checkpointView(checkpoint: CheckpointRecord, withSnapshot: boolean): CheckpointView {
  const { seq, step, reason, state, machineVersion, createdAt, snapshot } = checkpoint;
  return { seq, step, reason, state, machineVersion, createdAt, ...(withSnapshot ? { snapshot } : {}) };
}
