// Validation of supervisor data before any write; internal to the repository (not re-exported).

import { InvalidSupervisorDataError } from '../../domain/errors.js';
import { isTaskStatus } from '../../domain/spawned-task.js';
import { isSupervisorState, SUPERVISOR_STATES, type SupervisorState } from '../../domain/supervisor-state.js';
import { checkPendingQuestion, checkProgress, parsePendingQuestions } from '../row-parsers.js';
import type { FullSaveInput } from './records.js';

export function assertState(supervisorId: string, state: unknown): asserts state is SupervisorState {
  if (!isSupervisorState(state)) {
    throw new InvalidSupervisorDataError(supervisorId, 'state', `must be one of ${SUPERVISOR_STATES.join(', ')} (got ${JSON.stringify(state)})`);
  }
}

export function assertProgress(supervisorId: string, progress: unknown): void {
  const problem = checkProgress(progress);
  if (problem) throw new InvalidSupervisorDataError(supervisorId, 'progress', problem);
}

export function assertQuestion(supervisorId: string, question: unknown): void {
  const problems = checkPendingQuestion(question, 'question');
  if (problems.length > 0) throw new InvalidSupervisorDataError(supervisorId, 'pending question', problems.join('; '));
}

export function assertFullSave(input: FullSaveInput): void {
  const id = input.supervisorId;
  assertState(id, input.state);
  assertProgress(id, input.progress);
  if (typeof input.name !== 'string' || input.name.length === 0) throw new InvalidSupervisorDataError(id, 'name', 'must be a non-empty string');
  if (typeof input.phase !== 'string') throw new InvalidSupervisorDataError(id, 'phase', 'must be a string');
  const parsed = parsePendingQuestions(input.pendingQuestions);
  if (!parsed.ok) throw new InvalidSupervisorDataError(id, 'pendingQuestions', parsed.problems.join('; '));
  if (!Array.isArray(input.spawnedTaskIds) || !input.spawnedTaskIds.every((taskId) => typeof taskId === 'string' && taskId.length > 0)) {
    throw new InvalidSupervisorDataError(id, 'spawnedTaskIds', 'must be a list of non-empty strings');
  }
  if (!Number.isSafeInteger(input.step) || input.step < 1) throw new InvalidSupervisorDataError(id, 'step', 'must be a positive integer');
  if (input.snapshot === undefined || input.snapshot === null) throw new InvalidSupervisorDataError(id, 'snapshot', 'is required');
  if (input.forkedFrom !== undefined) {
    const { supervisorId, checkpointSeq, conversationLength } = input.forkedFrom;
    if (typeof supervisorId !== 'string' || supervisorId.length === 0) throw new InvalidSupervisorDataError(id, 'forkedFrom.supervisorId', 'must be the id of the source supervisor');
    if (!Number.isSafeInteger(checkpointSeq) || checkpointSeq < 1) throw new InvalidSupervisorDataError(id, 'forkedFrom.checkpointSeq', 'must be a positive integer');
    if (!Number.isSafeInteger(conversationLength) || conversationLength < 0) throw new InvalidSupervisorDataError(id, 'forkedFrom.conversationLength', 'must be a whole number');
    if (!Array.isArray(input.forkedFrom.tasks)) throw new InvalidSupervisorDataError(id, 'forkedFrom.tasks', 'must be a list');
  }
  for (const task of input.tasks ?? []) {
    if (!isTaskStatus(task.status)) throw new InvalidSupervisorDataError(id, `task ${task.id} status`, `must be running, completed or failed`);
    assertProgress(id, task.progress);
  }
}
