// Errors the runtime raises to its callers (the API maps each to an HTTP status).

import { SupervisorRuntimeError, errorText } from '../domain/errors.js';

/** The save point could not be committed; the transition did not happen. */
export class SaveFailedError extends SupervisorRuntimeError {
  override readonly name = 'SaveFailedError';
  /** `unknown`: the database stopped answering while the save point was written, so it may have committed. */
  readonly outcome: 'not_written' | 'unknown';
  constructor(supervisorId: string, eventType: string, cause: unknown) {
    const outcome = (cause as { outcome?: unknown } | null)?.outcome === 'unknown' ? 'unknown' : 'not_written';
    super(
      (outcome === 'unknown'
        ? `Supervisor ${supervisorId}: the outcome of ${eventType} is unknown: the database stopped answering while its save point was written (${errorText(cause)}), so it may have committed. ` +
          'Retry with the same ids (they make the retry safe) once the database answers; the supervisor is interrupted until then and resumes by itself.'
        : `Supervisor ${supervisorId}: ${eventType} was not applied because its save point could not be committed (${errorText(cause)}). ` +
          'The supervisor is interrupted until the database is back and then resumes by itself; retry the request then.'),
      supervisorId,
      { cause },
    );
    this.outcome = outcome;
  }
}

/** The supervisor exists but is not running in this daemon (finished, or not restored yet). */
export class SupervisorNotRunningError extends SupervisorRuntimeError {
  override readonly name = 'SupervisorNotRunningError';
  constructor(supervisorId: string, state: string) {
    super(`Supervisor ${supervisorId} is not running in this daemon (stored state ${state}). Resume it with POST /supervisors/${supervisorId}/resume first.`, supervisorId);
  }
}

/** A second answer to a question that already has one: the first answer wins. */
export class QuestionAlreadyAnsweredError extends SupervisorRuntimeError {
  override readonly name = 'QuestionAlreadyAnsweredError';
  constructor(
    supervisorId: string,
    readonly questionId: string,
    readonly firstAnswer: string,
    readonly answeredAt: string,
  ) {
    super(`Question ${questionId} of supervisor ${supervisorId} was already answered with "${firstAnswer}" at ${answeredAt}; the first answer wins.`, supervisorId);
  }
}

export class TaskNotFoundError extends SupervisorRuntimeError {
  override readonly name = 'TaskNotFoundError';
  constructor(readonly taskId: string) {
    super(`Task ${taskId} is not known: tasks are created with POST /supervisors/:id/tasks (or a SPAWN_TASK event).`);
  }
}

export class RuntimeStoppedError extends SupervisorRuntimeError {
  override readonly name = 'RuntimeStoppedError';
  constructor() {
    super('The runtime is shutting down and accepts no more work; start the daemon again.');
  }
}

// Errors raised below the runtime that reach its callers, so the API and the CLI import them from here only.
export { StaleWriteError } from '../persistence/supervisor-repository.js';
export { DaemonIdInUseError, OwnershipLostError, SupervisorOwnedElsewhereError } from '../persistence/ownership/errors.js';

/** A per-field edit of a supervisor a live daemon runs: that daemon is its only writer, so the change goes through it. */
export class SupervisorRunningError extends SupervisorRuntimeError {
  override readonly name = 'SupervisorRunningError';
  constructor(
    supervisorId: string,
    readonly operation: string,
    readonly owner: string,
    readonly ownerUrl: string | null,
    /** The runtime call or HTTP route that makes this change on a running supervisor. */
    readonly instead: string,
  ) {
    super(
      `${operation} refused: supervisor ${supervisorId} is running on daemon ${owner}${ownerUrl ? ` (${ownerUrl})` : ''}, which is its only writer. ` +
        `Make the change through that daemon with ${instead}, or stop the daemon first.`,
      supervisorId,
    );
  }
}

/** A fork named a checkpoint the supervisor does not have (never written, or pruned by retention). */
export class CheckpointNotFoundError extends SupervisorRuntimeError {
  override readonly name = 'CheckpointNotFoundError';
  constructor(
    supervisorId: string,
    readonly checkpointSeq: number,
  ) {
    super(
      `Supervisor ${supervisorId} has no checkpoint ${checkpointSeq} (never written, or pruned: each supervisor keeps its newest ` +
        `SUPERVISOR_RUNTIME_CHECKPOINT_RETAIN). List the stored ones with GET /supervisors/${supervisorId}/checkpoints and fork from one of those.`,
      supervisorId,
    );
  }
}

/** A checkpoint a fork cannot start from: a finished supervisor's, or one that fails validation. Nothing was written. */
export class ForkRefusedError extends SupervisorRuntimeError {
  override readonly name = 'ForkRefusedError';
  constructor(
    supervisorId: string,
    readonly checkpointSeq: number,
    readonly reason: string,
    readonly problems: string[] = [],
  ) {
    super(`Cannot fork supervisor ${supervisorId} from checkpoint ${checkpointSeq}: ${reason}. Nothing was written; fork from another checkpoint (GET /supervisors/${supervisorId}/checkpoints lists them).`, supervisorId);
  }
}

/** A message this supervisor already took in (the same sender and message id): applied once, nothing changed. */
export class MessageAlreadyReceivedError extends SupervisorRuntimeError {
  override readonly name = 'MessageAlreadyReceivedError';
  constructor(
    supervisorId: string,
    readonly from: string,
    readonly messageId: string,
  ) {
    super(`Supervisor ${supervisorId} already took in message ${messageId} from ${from}; a message is taken in once.`, supervisorId);
  }
}
