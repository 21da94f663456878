// Mapping of stored state, task and checkpoint rows to the records the reads return; internal to the repository (not re-exported).

import type { Selectable } from 'kysely';
import { InvalidSnapshotError } from '../../domain/errors.js';
import { isSupervisorState } from '../../domain/supervisor-state.js';
import { checkProgress, parsePendingQuestions, toIso } from '../row-parsers.js';
import type { DatabaseSchema, SupervisorStatesTable } from '../schema.js';
import type { CheckpointRecord, SupervisorDetailedState, TaskRecord } from './records.js';

type StateRow = Selectable<SupervisorStatesTable>;

export function toDetailedState(row: StateRow): SupervisorDetailedState {
  const problems: string[] = [];
  if (!isSupervisorState(row.state)) problems.push(`state ${JSON.stringify(row.state)} is not a known supervisor state`);
  const questions = parsePendingQuestions(row.pending_questions);
  if (!questions.ok) problems.push(...questions.problems);
  if (checkProgress(row.progress)) problems.push(`progress ${checkProgress(row.progress)}`);
  if (problems.length > 0 || !questions.ok) throw new InvalidSnapshotError(row.id, problems);
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    phase: row.phase,
    currentActivity: row.current_activity,
    progress: row.progress,
    errorMessage: row.error_message,
    spawnedTaskIds: row.spawned_task_ids,
    pendingQuestions: questions.value,
    restorationCount: row.restoration_count,
    lastRestoredAt: toIso(row.last_restored_at),
    restorationSource: row.restoration_source,
    lastHeartbeat: toIso(row.last_heartbeat),
    owner: row.owner,
    epoch: Number(row.epoch),
    conversationRef: row.conversation_ref,
    conversationLength: row.conversation_length,
    step: Number(row.step),
    checkpointSeq: Number(row.checkpoint_seq),
    machineVersion: row.machine_version,
    driver: row.driver,
    createdAt: toIso(row.created_at) ?? '',
    updatedAt: toIso(row.updated_at) ?? '',
  };
}

export function toTaskRecord(row: Selectable<DatabaseSchema['supervisor_tasks']>): TaskRecord {
  return {
    id: row.id,
    supervisorId: row.supervisor_id,
    description: row.description,
    status: row.status as TaskRecord['status'],
    progress: row.progress,
    result: row.result,
    error: row.error,
    createdAt: toIso(row.created_at) ?? '',
    updatedAt: toIso(row.updated_at) ?? '',
    finishedAt: toIso(row.finished_at),
    appliedStep: row.applied_step === null ? null : Number(row.applied_step),
  };
}

export function toCheckpoint(row: Selectable<DatabaseSchema['supervisor_checkpoints']>): CheckpointRecord {
  return {
    supervisorId: row.supervisor_id,
    seq: Number(row.seq),
    step: Number(row.step),
    reason: row.reason,
    state: row.state,
    snapshot: row.snapshot,
    machineVersion: row.machine_version,
    createdAt: toIso(row.created_at) ?? '',
  };
}
