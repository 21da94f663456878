// The seed's restoration types: what validation says, what recovery does, and what a restore reports.

import type { PendingQuestion } from './pending-question.js';
import type { SupervisorState } from './supervisor-state.js';
import type { TaskStatus } from './spawned-task.js';

export const STATE_RECOVERY_ACTIONS = ['restore', 'restore_from_checkpoint', 'start_fresh'] as const;
export type StateRecoveryAction = (typeof STATE_RECOVERY_ACTIONS)[number];

export const RESTORATION_SOURCES = ['daemon_restart', 'manual', 'reassignment'] as const;
export type RestorationSource = (typeof RESTORATION_SOURCES)[number];

export interface StateValidationResult {
  valid: boolean;
  errors: string[];
  warnings: string[];
  recoveryAction: StateRecoveryAction;
}

/** Everything the restoration protocol reads about one supervisor, in one round trip. */
export interface SupervisorRestorationContext {
  supervisorId: string;
  name: string;
  /** The row's `state` column as stored; validation checks it is a known value. */
  state: string;
  phase: string;
  currentActivity: string | null;
  progress: number;
  errorMessage: string | null;
  spawnedTaskIds: string[];
  pendingQuestions: unknown;
  restorationCount: number;
  lastRestoredAt: Date | null;
  restorationSource: string | null;
  lastHeartbeat: Date | null;
  conversationLength: number;
  /** The persisted snapshot as stored (validated before use). */
  snapshot: unknown;
  machineVersion: number | null;
  checkpointSeq: number;
  /** The agent driver the supervisor ran with. */
  driver: string | null;
  step: number;
  updatedAt: Date;
}

export interface TaskResumption {
  taskId: string;
  status: TaskStatus | 'missing';
  /** What restoration did: kept waiting, applied the outcome, or dropped a task that no longer exists. */
  action: 'resumed' | 'applied_completion' | 'applied_failure' | 'dropped';
  /** What the task was for. */
  description: string;
  /** The result or error it finished with (null while running, or when it reported none). */
  outcome: string | null;
}

export interface RestorationInfo {
  supervisorId: string;
  source: RestorationSource;
  recoveryAction: StateRecoveryAction;
  restoredState: SupervisorState;
  restoredPhase: string;
  /** The checkpoint used when the row itself was invalid; null when the row was used or nothing was. */
  checkpointSeq: number | null;
  restorationCount: number;
  questionsRedelivered: PendingQuestion[];
  tasksResumed: string[];
  tasksReconciled: TaskResumption[];
  validation: StateValidationResult;
  warnings: string[];
  contextMessage: string;
  durationMs: number;
}
