// The seed's per-field edits (phase, detailed state, a spawned task, a pending question, a restoration mark), made the
// one way that keeps row and snapshot agreeing: each is a machine transition committed as a save point, fenced by the
// stored step and owner like every other write. They edit supervisors no daemon is running; a running one refuses
// them (its daemon is the only writer), and the error names the runtime call or HTTP route that makes the change.

import { InvalidSupervisorDataError, EventRefusedError, SupervisorNotFoundError } from '../domain/errors.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationSource, SupervisorRestorationContext } from '../domain/restoration.js';
import type { SupervisorState } from '../domain/supervisor-state.js';
import { effectsOf, explainRefusal, SUPERVISOR_MACHINE_VERSION, supervisorMachine, transitionSupervisor, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorEvent } from '../machines/supervisor-types.js';
import { getOwner, releaseFromLapsedOwner } from '../persistence/ownership/claims.js';
import { OwnershipLostError } from '../persistence/ownership/errors.js';
import { assertProgress, assertQuestion, assertState } from '../persistence/supervisors/assertions.js';
import {
  getQuestion,
  getSupervisorStateForRestoration,
  getTask,
  listOpenSupervisorTasks,
  saveSupervisorStateFull,
  StaleWriteError,
  type DetailedStateUpdate,
  type Executor,
  type RestorationMark,
} from '../persistence/supervisor-repository.js';
import { SupervisorRunningError } from './errors.js';
import { snapshotTaskIds, validateRow } from './restoration.js';
import { fullSaveInput, saveKindFor } from './save-plan.js';

export interface OfflineEditOptions {
  /** The clock stamped on the event (default: now). */
  now?: () => Date;
  /** The subject prefix of the daemons that will relay this edit's messages (default: none, as in the runtime). */
  subjectPrefix?: string;
}

/** How often an edit re-reads and tries again when another writer committed between its read and its write. */
const ATTEMPTS = 5;

type Edit = { kind: 'event'; event: SupervisorEvent } | { kind: 'unchanged' };

/**
 * Read the supervisor, let `decide` pick the event (or decide nothing changes), and commit the transition as a save
 * point at the next step, fenced by the owner and epoch read. null when there is no such supervisor.
 */
async function applyEdit(
  db: Executor,
  supervisorId: string,
  how: { operation: string; instead: string; options: OfflineEditOptions },
  decide: (snapshot: SupervisorSnapshot) => Edit | Promise<Edit>,
): Promise<{ before: SupervisorSnapshot; after: SupervisorSnapshot } | null> {
  for (let attempt = 1; ; attempt++) {
    const [row, ownership] = await Promise.all([getSupervisorStateForRestoration(db, supervisorId), getOwner(db, supervisorId)]);
    if (!row || !ownership) return null;
    if (ownership.owner !== null && ownership.ownerLive) throw new SupervisorRunningError(supervisorId, how.operation, ownership.owner, ownership.ownerUrl, how.instead);
    const snapshot = await validSnapshot(db, supervisorId, row);
    const edit = await decide(snapshot);
    if (edit.kind === 'unchanged') return { before: snapshot, after: snapshot };
    const { event } = edit;
    const refusal = explainRefusal(snapshot, event);
    if (refusal !== null) throw new EventRefusedError(supervisorId, event.type, refusal, String(snapshot.value));
    const [after, actions] = transitionSupervisor(snapshot, event);
    // An owner whose lease ended may still be running its copy (paused, cut off): it loses the supervisor first, so
    // none of its later writes (heartbeats carry no step) can land over this edit. The next claim restores the edit.
    let epoch = ownership.epoch;
    if (ownership.owner !== null) {
      const released = await releaseFromLapsedOwner(db, supervisorId, { owner: ownership.owner, epoch: ownership.epoch });
      if (released === null) {
        if (attempt < ATTEMPTS) continue;
        throw new OwnershipLostError(supervisorId, { owner: 'nobody (an edit outside a daemon)', epoch: ownership.epoch }, (await getOwner(db, supervisorId)) ?? { owner: null, epoch: ownership.epoch });
      }
      epoch = released;
    }
    const input = fullSaveInput({
      snapshot: after,
      persisted: supervisorMachine.getPersistedSnapshot(after),
      machineVersion: SUPERVISOR_MACHINE_VERSION,
      step: row.step + 1,
      reason: saveKindFor(event, snapshot, after).reason,
      effects: effectsOf(actions),
      previousState: snapshot.value as SupervisorState,
      subjectPrefix: how.options.subjectPrefix ?? '',
      driver: row.driver,
      owner: null,
      epoch,
      at: 'at' in event ? event.at : new Date().toISOString(),
    });
    try {
      await saveSupervisorStateFull(db, input);
      return { before: snapshot, after };
    } catch (error) {
      // Another writer committed between our read and our write (a daemon claimed it, or another edit): read again.
      if ((error instanceof StaleWriteError || error instanceof OwnershipLostError) && attempt < ATTEMPTS) continue;
      throw error;
    }
  }
}

/** The stored snapshot as restoration would accept it (its validation, and the heartbeat columns laid over it). */
async function validSnapshot(db: Executor, supervisorId: string, row: SupervisorRestorationContext): Promise<SupervisorSnapshot> {
  const { outcome, snapshot } = validateRow(row, await listOpenSupervisorTasks(db, supervisorId, snapshotTaskIds(row.snapshot)));
  if (!snapshot) {
    throw new InvalidSupervisorDataError(
      supervisorId,
      'stored state',
      `does not pass validation (${outcome.result.errors.join('; ')}); start a daemon so restoration falls back to the newest valid checkpoint, then make the change`,
    );
  }
  return snapshot;
}

const stamp = (options: OfflineEditOptions) => (options.now?.() ?? new Date()).toISOString();

/**
 * Change the phase (SET_PHASE, checkpoint `phase_changed`). Returns false when the supervisor does not exist; true
 * when the phase is now `phase` (already being it changes nothing).
 */
export async function updateSupervisorPhase(db: Executor, supervisorId: string, phase: string, options: OfflineEditOptions = {}): Promise<boolean> {
  if (typeof phase !== 'string' || phase.trim().length === 0) throw new InvalidSupervisorDataError(supervisorId, 'phase', 'must be a non-empty string');
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'updateSupervisorPhase', instead: `runtime.send(id, { type: 'SET_PHASE', phase }) or POST /supervisors/${supervisorId}/events`, options },
    ((snapshot: SupervisorSnapshot): Edit => (snapshot.context.phase === phase ? { kind: 'unchanged' } : { kind: 'event', event: { type: 'SET_PHASE', phase, at: stamp(options) } })),
  );
  return done !== null;
}

/** The states a caller may set directly, and the event that gets there; every other state follows from open work. */
const SETTABLE_STATES: ReadonlySet<SupervisorState> = new Set(['completed', 'failed', 'interrupted']);

/**
 * Change any of state, activity, progress and error message, each through the event that makes that change: activity
 * and progress through SET_ACTIVITY; state `completed` through COMPLETE, `failed` through FAIL (with `errorMessage` as
 * its error) and `interrupted` through INTERRUPT (with `errorMessage` as its reason). Other states follow from the
 * supervisor's questions and tasks and cannot be set. Returns false when the supervisor does not exist.
 */
export async function updateSupervisorDetailedState(db: Executor, supervisorId: string, update: DetailedStateUpdate, options: OfflineEditOptions = {}): Promise<boolean> {
  if (update.state !== undefined) assertState(supervisorId, update.state);
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  const { state, currentActivity, progress, errorMessage } = update;
  if (state === undefined && currentActivity === undefined && progress === undefined && errorMessage === undefined) {
    throw new InvalidSupervisorDataError(supervisorId, 'update', 'names no field to change');
  }
  if (state !== undefined && !SETTABLE_STATES.has(state)) {
    throw new InvalidSupervisorDataError(
      supervisorId,
      'state',
      `cannot be set to ${state}: only completed, failed and interrupted can; ${state} follows from the supervisor's questions and tasks (ask, answer, spawn, report)`,
    );
  }
  if (errorMessage !== undefined && errorMessage !== null && state !== 'failed' && state !== 'interrupted') {
    throw new InvalidSupervisorDataError(supervisorId, 'errorMessage', "is set by failing or interrupting the supervisor: pass it with state 'failed' or 'interrupted'");
  }
  const instead = `runtime.send(id, …) or POST /supervisors/${supervisorId}/events`;
  if (currentActivity !== undefined || progress !== undefined) {
    const done = await applyEdit(
      db,
      supervisorId,
      { operation: 'updateSupervisorDetailedState', instead, options },
      (
        (snapshot: SupervisorSnapshot): Edit => ({
          kind: 'event',
          event: {
            type: 'SET_ACTIVITY',
            activity: currentActivity ?? snapshot.context.currentActivity ?? '',
            ...(progress !== undefined ? { progress } : {}),
            at: stamp(options),
          },
        })
      ),
    );
    if (!done) return false;
  }
  if (state === undefined) return true;
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'updateSupervisorDetailedState', instead, options },
    ((snapshot: SupervisorSnapshot): Edit => {
      if (snapshot.value === state) return { kind: 'unchanged' };
      const at = stamp(options);
      if (state === 'completed') return { kind: 'event', event: { type: 'COMPLETE', at } };
      if (state === 'failed') return { kind: 'event', event: { type: 'FAIL', error: errorMessage ?? 'failed by updateSupervisorDetailedState', at } };
      return { kind: 'event', event: { type: 'INTERRUPT', reason: errorMessage ?? 'interrupted by updateSupervisorDetailedState', at } };
    }),
  );
  return done !== null;
}

/**
 * Spawn a task (SPAWN_TASK: the task row, its hand-off to the workers on tasks.spawn, and the checkpoint commit
 * together). Returns true when the task is new, false when this supervisor already has a task with this id.
 */
export async function addSupervisorSpawnedTask(db: Executor, supervisorId: string, taskId: string, description = '', options: OfflineEditOptions = {}): Promise<boolean> {
  if (typeof taskId !== 'string' || taskId.length === 0) throw new InvalidSupervisorDataError(supervisorId, 'taskId', 'must be a non-empty string');
  let added = false;
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'addSupervisorSpawnedTask', instead: `runtime.spawnTask(id, { taskId, description }) or POST /supervisors/${supervisorId}/tasks`, options },
    (async (snapshot: SupervisorSnapshot): Promise<Edit> => {
      added = false;
      if (snapshot.context.tasks.some((task) => task.id === taskId)) return { kind: 'unchanged' };
      const existing = await getTask(db, taskId);
      if (existing && existing.supervisorId !== supervisorId) throw new InvalidSupervisorDataError(supervisorId, 'taskId', `${taskId} is already a task of supervisor ${existing.supervisorId}`);
      if (existing) return { kind: 'unchanged' };
      added = true;
      return { kind: 'event', event: { type: 'SPAWN_TASK', taskId, description, at: stamp(options) } };
    }),
  );
  return done !== null && added;
}

/**
 * Ask a question (ASK_QUESTION: its row, its delivery on NATS and the checkpoint commit together; the supervisor waits
 * for its human). Returns true when it was asked, false when this supervisor already asked a question with this id.
 */
export async function addSupervisorPendingQuestion(db: Executor, supervisorId: string, question: PendingQuestion, options: OfflineEditOptions = {}): Promise<boolean> {
  assertQuestion(supervisorId, question);
  let added = false;
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'addSupervisorPendingQuestion', instead: `runtime.askQuestion(id, …) or POST /supervisors/${supervisorId}/questions`, options },
    (async (snapshot: SupervisorSnapshot): Promise<Edit> => {
      added = false;
      if (snapshot.context.pendingQuestions.some((pending) => pending.id === question.id)) return { kind: 'unchanged' };
      if (await getQuestion(db, supervisorId, question.id)) return { kind: 'unchanged' };
      added = true;
      return {
        kind: 'event',
        event: {
          type: 'ASK_QUESTION',
          questionId: question.id,
          question: question.question,
          ...(question.choices !== null ? { choices: [...question.choices] } : {}),
          ...(question.context !== null ? { context: question.context } : {}),
          at: question.askedAt,
        },
      };
    }),
  );
  return done !== null && added;
}

/**
 * Withdraw a pending question (WITHDRAW_QUESTION: it leaves the snapshot, its row says withdrawn, a later answer is
 * refused). Returns false when no question with that id is pending.
 */
export async function removeSupervisorPendingQuestion(db: Executor, supervisorId: string, questionId: string, reason?: string, options: OfflineEditOptions = {}): Promise<boolean> {
  let removed = false;
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'removeSupervisorPendingQuestion', instead: `runtime.withdrawQuestion(id, questionId) or POST /supervisors/${supervisorId}/questions/${questionId}/withdraw`, options },
    ((snapshot: SupervisorSnapshot): Edit => {
      removed = snapshot.context.pendingQuestions.some((pending) => pending.id === questionId);
      if (!removed) return { kind: 'unchanged' };
      return { kind: 'event', event: { type: 'WITHDRAW_QUESTION', questionId, ...(reason !== undefined ? { reason } : {}), at: stamp(options) } };
    }),
  );
  return done !== null && removed;
}

/**
 * Count one more restoration and stamp its time and source (RESTORED, with a note in the conversation, checkpoint
 * `restored`). Throws SupervisorNotFoundError for an unknown id. A daemon's restoration records this by itself.
 */
export async function markSupervisorRestored(db: Executor, supervisorId: string, source: RestorationSource, at: Date = new Date(), options: OfflineEditOptions = {}): Promise<RestorationMark> {
  const done = await applyEdit(
    db,
    supervisorId,
    { operation: 'markSupervisorRestored', instead: `POST /supervisors/${supervisorId}/resume (restoration marks itself)`, options },
    (
      (): Edit => ({
        kind: 'event',
        event: { type: 'RESTORED', at: at.toISOString(), source, contextMessage: `Marked as restored (${source}) by markSupervisorRestored.`, redeliver: false },
      })
    ),
  );
  if (!done) throw new SupervisorNotFoundError(supervisorId);
  const { context } = done.after;
  return { restorationCount: context.restorationCount, lastRestoredAt: context.lastRestoredAt ?? at.toISOString(), restorationSource: source };
}
