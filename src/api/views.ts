// The JSON the API answers with; the CLI reads the same types, so the two cannot drift apart.

import type { SupervisorState } from '../domain/supervisor-state.js';
import type { CheckpointRecord, RuntimeHealth, SupervisorDetailedState, SupervisorRuntime } from '../runtime/supervisor-runtime.js';

/** The stored detailed state plus whether this daemon runs the supervisor right now. */
export interface SupervisorView extends SupervisorDetailedState {
  live: boolean;
}

export interface InvalidSupervisorView {
  id: string;
  problems: string[];
}

export interface SupervisorListResponse {
  supervisors: SupervisorView[];
  /** Rows whose stored state is not the shape the code expects; listed so one bad row hides nothing. */
  invalid: InvalidSupervisorView[];
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

/** A fresh read of the stored state (so the answer reflects what committed), marked live or not. */
export async function describeSupervisor(runtime: SupervisorRuntime, id: string): Promise<SupervisorView> {
  return supervisorView(runtime, await runtime.describe(id));
}

export function checkpointView(checkpoint: CheckpointRecord, withSnapshot: boolean): CheckpointView {
  const { seq, step, reason, state, machineVersion, createdAt, snapshot } = checkpoint;
  return { seq, step, reason, state, machineVersion, createdAt, ...(withSnapshot ? { snapshot } : {}) };
}
