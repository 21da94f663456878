// The restoration protocol's validation guards: small named pure checks over a stored row (or checkpoint) and the
// tasks that exist, producing a StateValidationResult. No database here: the caller hands in what it read.

import { checkPendingQuestion } from '../domain/pending-question.js';
import type { StateValidationResult } from '../domain/restoration.js';
import { isTaskStatus } from '../domain/spawned-task.js';
import { isSupervisorState, SUPERVISOR_STATES } from '../domain/supervisor-state.js';
import { migrateSnapshot, SNAPSHOT_MIGRATIONS, type SnapshotMigration } from './snapshot-migrations.js';
import { supervisorMachine, type SupervisorSnapshot } from './supervisor-machine.js';
import type { SupervisorContext } from './supervisor-types.js';

/** What validation looks at: a row's columns, or a checkpoint's state with its snapshot's own fields. */
export interface StoredStateCandidate {
  supervisorId: string;
  /** The `state` column as text. */
  state: string;
  progress: unknown;
  errorMessage: string | null;
  spawnedTaskIds: readonly string[];
  pendingQuestions: unknown;
  snapshot: unknown;
  machineVersion: number | null;
}

/** Task rows found for the candidate's task ids (id → status). */
export type TaskStatuses = ReadonlyMap<string, string>;

export interface ValidationOutcome {
  result: StateValidationResult;
  /** The restorable snapshot when valid (migrated to the current machine version). */
  snapshot: SupervisorSnapshot | null;
}

interface GuardInput {
  candidate: StoredStateCandidate;
  context: SupervisorContext | null;
  value: string | null;
  tasks: TaskStatuses;
}

type Guard = (input: GuardInput) => { errors?: string[]; warnings?: string[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Counters are written into integer columns: 2^31 and above cannot be stored. */
const MAX_COUNTER = 2 ** 31 - 1;

function contextProblems(context: unknown, supervisorId: string): string[] {
  if (!isRecord(context)) return ['snapshot context is not an object'];
  const problems: string[] = [];
  if (context.supervisorId !== supervisorId) problems.push(`snapshot belongs to supervisor ${String(context.supervisorId)}, not ${supervisorId}`);
  for (const key of ['name', 'phase', 'createdAt'] as const) if (typeof context[key] !== 'string') problems.push(`snapshot context.${key} is not a string`);
  for (const key of ['tasks', 'pendingQuestions'] as const) if (!Array.isArray(context[key])) problems.push(`snapshot context.${key} is not a list`);
  if (!Number.isInteger(context.progress)) problems.push('snapshot context.progress is not an integer');
  // Counters the save path writes into integer columns (or adds to): a value it could never write fails here, so the
  // walk moves on to a checkpoint that can be restored instead of the restore failing at its save point.
  for (const key of ['conversationLength', 'restorationCount', 'answeredQuestionCount', 'completedTaskCount', 'failedTaskCount'] as const) {
    const value = context[key];
    if (!Number.isInteger(value)) problems.push(`snapshot context.${key} is not an integer`);
    else if ((value as number) < 0 || (value as number) >= MAX_COUNTER) problems.push(`snapshot context.${key} ${String(value)} is outside 0–${MAX_COUNTER - 1}`);
  }
  // Absent in snapshots from before it was recorded; otherwise a seq of this conversation.
  const since = context.interruptedAtSeq;
  if (since !== undefined && since !== null && (!Number.isInteger(since) || (since as number) < 0 || (since as number) > Number(context.conversationLength))) {
    problems.push(`snapshot context.interruptedAtSeq ${String(since)} is not a seq of its conversation (0–${String(context.conversationLength)})`);
  }
  // Absent when not held (and in snapshots from before it was recorded); otherwise a boolean.
  if (context.held !== undefined && typeof context.held !== 'boolean') problems.push(`snapshot context.held ${JSON.stringify(context.held) ?? String(context.held)} is not a boolean`);
  if (Array.isArray(context.tasks)) {
    context.tasks.forEach((task, index) => {
      const where = `snapshot context.tasks[${index}]`;
      if (!isRecord(task) || typeof task.id !== 'string' || task.id.length === 0 || typeof task.status !== 'string') problems.push(`${where} has no id and status`);
      else if (!isTaskStatus(task.status)) problems.push(`${where}.status ${JSON.stringify(task.status)} is not running, completed or failed`);
      else if (!Number.isInteger(task.progress) || (task.progress as number) < 0 || (task.progress as number) > 100) problems.push(`${where}.progress is not a whole number from 0 to 100`);
      else if (typeof task.description !== 'string') problems.push(`${where}.description is not a string`);
    });
  }
  // The same checks the save path makes of every pending question (a snapshot it would refuse cannot be restored).
  if (Array.isArray(context.pendingQuestions)) {
    context.pendingQuestions.forEach((question, index) => problems.push(...checkPendingQuestion(question, `snapshot context.pendingQuestions[${index}]`)));
  }
  return problems;
}

/** Each guard is named after what it requires; the README lists them. */
export const RESTORATION_GUARDS: Readonly<Record<string, Guard>> = {
  stateIsKnown: ({ candidate }) =>
    isSupervisorState(candidate.state) ? {} : { errors: [`state "${candidate.state}" is not one of ${SUPERVISOR_STATES.join(', ')}`] },

  snapshotStateMatchesRow: ({ candidate, value }) =>
    value === null || value === candidate.state ? {} : { errors: [`snapshot state ${value} differs from the stored state ${candidate.state}`] },

  // The row's column and the snapshot's context are checked apart, and each error names the one that is out of range.
  progressInRange: ({ candidate, context }) => {
    const errors: string[] = [];
    for (const [where, progress] of [['progress', candidate.progress], ['snapshot context.progress', context?.progress]] as const) {
      if (progress === undefined || (Number.isInteger(progress) && (progress as number) >= 0 && (progress as number) <= 100)) continue;
      errors.push(Number.isInteger(progress) ? `${where} ${String(progress)} is outside 0–100` : `${where} ${JSON.stringify(progress) ?? String(progress)} is not a whole number from 0 to 100`);
    }
    return { errors };
  },

  waitingForUserHasQuestion: ({ candidate, context }) =>
    candidate.state !== 'waiting_for_user' || (context && context.pendingQuestions.length > 0)
      ? {}
      : { errors: ['state waiting_for_user has no pending question'] },

  waitingForTasksHasRunningTask: ({ candidate, context, tasks }) => {
    if (candidate.state !== 'waiting_for_tasks' || !context) return {};
    const running = context.tasks.filter((task) => task.status === 'running' && tasks.has(task.id));
    return running.length > 0 ? {} : { errors: ['state waiting_for_tasks has no running task that exists'] };
  },

  failedHasErrorMessage: ({ candidate }) =>
    candidate.state !== 'failed' || (candidate.errorMessage ?? '').trim() !== '' ? {} : { errors: ['state failed has no error message'] },

  spawnedTasksExist: ({ candidate, context, tasks }) => {
    if (!context) return {};
    const snapshotIds = context.tasks.map((task) => task.id);
    const errors: string[] = [];
    if (snapshotIds.join('\u0000') !== candidate.spawnedTaskIds.join('\u0000')) {
      errors.push(`spawned_task_ids [${candidate.spawnedTaskIds.join(', ')}] differ from the snapshot's tasks [${snapshotIds.join(', ')}]`);
    }
    const missing = snapshotIds.filter((id) => !tasks.has(id));
    // A task row that vanished is recoverable (restoration drops the task with a warning); disagreeing lists are corruption.
    return { errors, warnings: missing.map((id) => `spawned task ${id} does not exist; it will be dropped`) };
  },

  pendingQuestionIdsUnique: ({ candidate, context }) => {
    const errors: string[] = [];
    for (const [where, list] of [['pending_questions', candidate.pendingQuestions], ['snapshot pendingQuestions', context?.pendingQuestions]] as const) {
      if (!Array.isArray(list)) {
        if (list !== undefined) errors.push(`${where} is not a list`);
        continue;
      }
      const ids = list.map((q: unknown) => (isRecord(q) ? q.id : undefined));
      if (ids.some((id) => typeof id !== 'string')) errors.push(`${where} has a question without an id`);
      const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
      if (duplicate !== undefined) errors.push(`${where} has question id ${String(duplicate)} more than once`);
    }
    if (context && Array.isArray(candidate.pendingQuestions)) {
      const rowIds = (candidate.pendingQuestions as unknown[]).map((q) => (isRecord(q) ? q.id : undefined)).join('\u0000');
      if (rowIds !== context.pendingQuestions.map((q) => q.id).join('\u0000')) errors.push("pending_questions differ from the snapshot's pending questions");
    }
    return { errors };
  },
};

/**
 * Validate a stored candidate: the snapshot must parse and its machine version be supported (or migrate), then every
 * guard runs. Errors make it invalid; warnings do not.
 */
export function validateStoredState(
  candidate: StoredStateCandidate,
  tasks: TaskStatuses,
  options: { fallbackAction?: 'restore' | 'restore_from_checkpoint'; migrations?: ReadonlyMap<number, SnapshotMigration> } = {},
): ValidationOutcome {
  const errors: string[] = [];
  const warnings: string[] = [];
  let context: SupervisorContext | null = null;
  let value: string | null = null;
  let snapshot: SupervisorSnapshot | null = null;

  if (!isRecord(candidate.snapshot)) {
    errors.push(candidate.snapshot === null || candidate.snapshot === undefined ? 'no snapshot is stored' : 'snapshot is not a JSON object');
  } else {
    const migrated = migrateSnapshot(candidate.snapshot, candidate.machineVersion, options.migrations ?? SNAPSHOT_MIGRATIONS);
    if (!migrated.ok) {
      errors.push(migrated.problem);
    } else {
      if (migrated.migratedFrom !== null) warnings.push(`snapshot migrated from machine version ${migrated.migratedFrom}`);
      const raw = migrated.snapshot;
      const problems = contextProblems(raw.context, candidate.supervisorId);
      if (!isSupervisorState(raw.value)) problems.push(`snapshot state ${JSON.stringify(raw.value)} is not a supervisor state`);
      if (problems.length > 0) {
        errors.push(...problems);
      } else {
        try {
          snapshot = supervisorMachine.resolveState({ value: raw.value as string, context: raw.context as unknown as SupervisorContext });
          context = snapshot.context;
          value = String(snapshot.value);
        } catch (error) {
          errors.push(`snapshot does not resolve in the machine: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  }
  for (const guard of Object.values(RESTORATION_GUARDS)) {
    const outcome = guard({ candidate, context, value, tasks });
    errors.push(...(outcome.errors ?? []));
    warnings.push(...(outcome.warnings ?? []));
  }
  const valid = errors.length === 0;
  return {
    result: { valid, errors, warnings, recoveryAction: valid ? (options.fallbackAction ?? 'restore') : 'restore_from_checkpoint' },
    snapshot: valid ? snapshot : null,
  };
}
