// The restorer: runs the restoration protocol (src/machines/restoration-machine.ts) for a supervisor this daemon has
// claimed, providing each step with what it needs from the database and the runtime's host interface. Restores of one
// id run one after another; a restore that fails leaves nothing half-running, and one the database interrupted is
// retried every lease round.

import { performance } from 'node:perf_hooks';
import { createActor, fromPromise, initialTransition, toPromise } from 'xstate';
import { DatabaseUnavailableError, errorText, SupervisorNotFoundError, SupervisorRuntimeError } from '../domain/errors.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationInfo, RestorationSource, SupervisorRestorationContext, TaskResumption } from '../domain/restoration.js';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import { buildRestorationContextMessage } from '../machines/restoration-context.js';
import { validateStoredState, type StoredStateCandidate, type TaskStatuses } from '../machines/restoration-guards.js';
import { migrateSnapshot } from '../machines/snapshot-migrations.js';
import { RESTORATION_STEP_NAMES, restorationMachine, type RestorationMachineContext, type RestorationOutput, type RestorationStepInput, type RestorationStepOutput } from '../machines/restoration-machine.js';
import { runRestorationSteps, type RestorationStep, type RestorationStepName } from '../machines/restoration-runner.js';
import { deriveWaitingState, supervisorMachine, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorContext } from '../machines/supervisor-types.js';
import { hasNotStarted, isHeld } from '../machines/supervisor-updates.js';
import {
  countConversations,
  enqueueOutbox,
  getSupervisorStatesForRestoration,
  listOpenTasksOfSupervisors,
  listPendingQuestionsOf,
  getSupervisorStateForRestoration,
  listCheckpoints,
  getQuestions,
  listOpenSupervisorTasks,
  quarantineSupervisorRow,
  validateSpawnedTasks,
  type CheckpointRecord,
  type QuestionRecord,
  type TaskRecord,
} from '../persistence/supervisor-repository.js';
import { claimSupervisor, getOwner, type ClaimedSupervisor } from '../persistence/ownership/claims.js';
import { listWaitingAnswers } from '../persistence/ownership/inbox.js';
import { SupervisorOwnedElsewhereError } from '../persistence/ownership/errors.js';
import type { DurableSupervisor } from './durable-supervisor.js';
import { SaveFailedError } from './errors.js';
import { crashPoint } from './crash-points.js';
import type { Logger } from './logger.js';
import type { Placement, RuntimeHost } from './runtime-host.js';
import { taskSpawnOutbox } from './save-plan.js';

export class RestorationFailedError extends SupervisorRuntimeError {
  override readonly name = 'RestorationFailedError';
  constructor(supervisorId: string, reason: string) {
    super(
      `Supervisor ${supervisorId} could not be restored: ${reason}. It is interrupted when its state was known; if the database ` +
        `was away this daemon retries it every lease round, otherwise fix the cause and resume it with POST /supervisors/${supervisorId}/resume.`,
      supervisorId,
    );
  }
}

export interface RestoreAllSummary {
  total: number;
  restored: number;
  fromCheckpoint: number;
  startedFresh: number;
  failed: Array<{ supervisorId: string; error: string }>;
  durationMs: number;
  results: RestorationInfo[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function snapshotTaskIds(snapshot: unknown): string[] {
  const tasks = isRecord(snapshot) && isRecord(snapshot.context) && Array.isArray(snapshot.context.tasks) ? snapshot.context.tasks : [];
  return tasks.flatMap((task) => (isRecord(task) && typeof task.id === 'string' ? [task.id] : []));
}

function candidateFromRow(raw: SupervisorRestorationContext): StoredStateCandidate {
  return {
    supervisorId: raw.supervisorId,
    state: raw.state,
    progress: raw.progress,
    errorMessage: raw.errorMessage,
    spawnedTaskIds: raw.spawnedTaskIds,
    pendingQuestions: raw.pendingQuestions,
    snapshot: raw.snapshot,
    machineVersion: raw.machineVersion,
  };
}

/** A checkpoint carries only a state and a snapshot: the snapshot's own fields stand in for the row's columns. */
export function candidateFromCheckpoint(supervisorId: string, checkpoint: CheckpointRecord): StoredStateCandidate {
  // Read after migrating it: an older machine version's snapshot keeps finished tasks in its list, which the migrated
  // context (the one validated) no longer has. One that does not migrate is validated as stored (and fails there).
  const migrated = isRecord(checkpoint.snapshot) ? migrateSnapshot(checkpoint.snapshot, checkpoint.machineVersion) : null;
  const snapshot = migrated?.ok ? migrated.snapshot : checkpoint.snapshot;
  const context = isRecord(snapshot) && isRecord(snapshot.context) ? snapshot.context : {};
  return {
    supervisorId,
    state: checkpoint.state,
    progress: context.progress,
    errorMessage: typeof context.errorMessage === 'string' ? context.errorMessage : null,
    spawnedTaskIds: snapshotTaskIds(snapshot),
    pendingQuestions: context.pendingQuestions,
    snapshot: checkpoint.snapshot,
    machineVersion: checkpoint.machineVersion,
  };
}

function withContext(snapshot: SupervisorSnapshot, patch: Partial<SupervisorContext>): SupervisorSnapshot {
  return supervisorMachine.resolveState({ value: snapshot.value as string, context: { ...snapshot.context, ...patch } });
}

/** Statuses of the given task ids among a supervisor's task rows (read once, for the row and every checkpoint tried). */
function statusesAmong(rows: readonly TaskRecord[], ids: readonly string[]): TaskStatuses {
  const wanted = new Set(ids);
  return new Map(rows.filter((task) => wanted.has(task.id)).map((task) => [task.id, task.status]));
}

/**
 * Validate the stored row; when it passes, its snapshot with the three columns heartbeat saves write laid over it
 * (the row is newer than its snapshot for those).
 */
export function validateRow(raw: SupervisorRestorationContext, taskRows: readonly TaskRecord[]): { outcome: ReturnType<typeof validateStoredState>; snapshot: SupervisorSnapshot | null } {
  const outcome = validateStoredState(candidateFromRow(raw), statusesAmong(taskRows, [...raw.spawnedTaskIds, ...snapshotTaskIds(raw.snapshot)]));
  if (!outcome.snapshot) return { outcome, snapshot: null };
  const { context } = outcome.snapshot;
  const lastHeartbeatAt = raw.lastHeartbeat ? raw.lastHeartbeat.toISOString() : context.lastHeartbeatAt;
  // Usually the last save point was a full one and the three agree: the snapshot is taken as it is.
  if (context.currentActivity === raw.currentActivity && context.progress === raw.progress && context.lastHeartbeatAt === lastHeartbeatAt) {
    return { outcome, snapshot: outcome.snapshot };
  }
  const snapshot = withContext(outcome.snapshot, { currentActivity: raw.currentActivity, progress: raw.progress, lastHeartbeatAt });
  return { outcome, snapshot };
}

/**
 * Walk a supervisor's checkpoints from the newest back and return the first that validates (read only). An older
 * checkpoint may name tasks that have finished since: their rows are read into `taskRows`, so they are not taken for lost.
 */
export async function newestValidCheckpoint(
  db: RuntimeHost['database']['db'],
  supervisorId: string,
  taskRows: TaskRecord[],
): Promise<{ checkpoint: CheckpointRecord; snapshot: SupervisorSnapshot; warnings: string[] } | null> {
  let before: number | undefined;
  for (;;) {
    const page = await listCheckpoints(db, supervisorId, { limit: 25, ...(before !== undefined ? { beforeSeq: before } : {}) });
    const known = new Set(taskRows.map((task) => task.id));
    const unknown = [...new Set(page.flatMap((checkpoint) => snapshotTaskIds(checkpoint.snapshot)))].filter((id) => !known.has(id));
    if (unknown.length > 0) taskRows.push(...(await validateSpawnedTasks(db, supervisorId, unknown)).existing);
    for (const checkpoint of page) {
      const candidate = candidateFromCheckpoint(supervisorId, checkpoint);
      const outcome = validateStoredState(candidate, statusesAmong(taskRows, candidate.spawnedTaskIds), { fallbackAction: 'restore_from_checkpoint' });
      if (outcome.snapshot) return { checkpoint, snapshot: outcome.snapshot, warnings: outcome.result.warnings };
    }
    if (page.length < 25) return null;
    before = page[page.length - 1]?.seq;
  }
}

interface Session {
  raw: SupervisorRestorationContext | null;
  snapshot: SupervisorSnapshot | null;
  step: number;
  supervisor: DurableSupervisor | null;
  tasks: TaskResumption[];
  redelivered: PendingQuestion[];
  contextMessage: string;
  /** The error that ended the protocol, if one did (the machine keeps only its message). */
  failure: unknown;
  /** The open task rows (and those the row or a tried checkpoint names), and the stored conversation length. */
  taskRows: TaskRecord[];
  conversationStored: number;
  /** supervisor_questions rows still waiting for an answer. */
  pendingRows: QuestionRecord[];
  /** Questions whose answer waits in the inbox: not delivered again (the owner applies the answer after the restore). */
  waitingAnswers: string[];
}

/** The epoch a restore runs at, and whom the supervisor came from. */
export interface Claim {
  epoch: number;
  previousOwner: string | null;
}

export interface RestoreOptions {
  /** Not found: start a fresh supervisor under this id (with a warning) instead of answering SupervisorNotFoundError. */
  startFreshIfMissing?: boolean;
}

export interface Restorer {
  /**
   * Claim the supervisor for this daemon (bumping its epoch, which fences any other copy) and restore it. Refused with
   * SupervisorOwnedElsewhereError while another live daemon owns it; SupervisorNotFoundError for an unknown id unless
   * `startFreshIfMissing`.
   */
  restore(supervisorId: string, source: RestorationSource, options?: RestoreOptions): Promise<RestorationInfo>;
  /**
   * Restore supervisors the lease keeper already claimed, at most `concurrency` at a time (counting those of other
   * calls in flight); failures are counted, not thrown.
   */
  restoreClaimed(claims: Array<{ claim: ClaimedSupervisor; source: RestorationSource }>, summary: RestoreAllSummary, concurrency: number): Promise<void>;
  /**
   * Take the stored state back into a copy that fell behind a row this daemon itself wrote (a lost commit reply): no
   * restoration is counted and nothing is re-delivered. A row another daemon owns now is left to it.
   */
  resync(supervisorId: string, epoch: number): Promise<void>;
  /** Try again what this daemon owns but could not restore (or reload) because the database was away. */
  retryStranded(): Promise<void>;
  /** Wait for restores in flight (shutdown). */
  settle(): Promise<void>;
  /** A restore or resync of this id is queued or running. */
  inFlight(supervisorId: string): boolean;
}

/** Owned here, running nowhere, because the database was away: what to try again. */
type Stranded = { kind: 'restore'; claim: Claim; source: RestorationSource } | { kind: 'resync'; epoch: number };

export function emptyRestoreAllSummary(): RestoreAllSummary {
  return { total: 0, restored: 0, fromCheckpoint: 0, startedFresh: 0, failed: [], durationMs: 0, results: [] };
}

export function createRestorer(host: RuntimeHost): Restorer {
  // Restorations of one id run one after the other: two at once would stop each other's copy and leave it running nowhere.
  const inFlight = new Map<string, Promise<unknown>>();
  // Owned here, running nowhere, because the database was away: retried every lease round until they run.
  const stranded = new Map<string, Stranded>();
  const strand = (supervisorId: string, entry: Stranded) => stranded.set(supervisorId, entry);
  // Restores of claimed batches running now, across batches (the lease keeper overlaps two): each call's concurrency
  // bounds them all, so a batch that starts early waits for a slot once its reads are in.
  let active = 0;
  const waiting: Array<() => void> = [];
  const acquire = async (limit: number): Promise<void> => {
    if (active < limit) {
      active += 1;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const wake = waiting.shift();
    if (wake) wake();
    else active -= 1;
  };

  function serialized<T>(supervisorId: string, run: () => Promise<T>): Promise<T> {
    const previous = inFlight.get(supervisorId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    inFlight.set(supervisorId, next);
    const forget = () => {
      if (inFlight.get(supervisorId) === next) inFlight.delete(supervisorId);
    };
    next.then(forget, forget);
    return next;
  }

  async function claimFor(supervisorId: string, options: RestoreOptions): Promise<Claim | 'missing'> {
    await host.ready();
    const result = await claimSupervisor(host.database.db, { daemonId: host.daemonId, supervisorId });
    if (result.outcome === 'owned_elsewhere') throw new SupervisorOwnedElsewhereError(supervisorId, result.owner, result.ownerUrl);
    if (result.outcome === 'claimed') crashPoint('claim.after-commit');
    if (result.outcome === 'not_found') {
      if (!options.startFreshIfMissing) throw new SupervisorNotFoundError(supervisorId);
      return 'missing';
    }
    return { epoch: result.claim.epoch, previousOwner: result.claim.previousOwner };
  }

  return {
    restore(supervisorId, source, options = {}) {
      return serialized(supervisorId, async () => {
        const claim = await claimFor(supervisorId, options);
        if (claim === 'missing') {
          host.logger.warn({ supervisorId, source }, 'no stored state for this id: starting a fresh supervisor under it (startFreshIfMissing)');
          return restoreOnce(host, supervisorId, source, { epoch: 1, previousOwner: null }, strand);
        }
        return restoreOnce(host, supervisorId, source, claim, strand);
      });
    },

    async restoreClaimed(claims, summary, concurrency) {
      summary.total += claims.length;
      const limit = Math.max(1, Math.floor(concurrency));
      let next = 0;
      // Step 1's reads for a whole slice of the claimed batch at once; a failed load leaves each to read for itself.
      const loads = new Map<number, Promise<Map<string, Loaded> | null>>();
      const loadedFor = (index: number): Promise<Map<string, Loaded> | null> => {
        const slice = Math.floor(index / LOAD_BATCH);
        let load = loads.get(slice);
        if (!load) {
          const ids = claims.slice(slice * LOAD_BATCH, (slice + 1) * LOAD_BATCH).map((entry) => entry.claim.supervisorId);
          load = loadMany(host.database.db, ids).catch((error: unknown) => {
            host.logger.warn({ err: errorText(error), supervisors: ids.length }, 'could not load a batch for restoration; each supervisor reads its own state');
            return null;
          });
          loads.set(slice, load);
        }
        return load;
      };
      const worker = async () => {
        while (next < claims.length) {
          const index = next++;
          const entry = claims[index];
          if (!entry) break;
          const { claim, source } = entry;
          try {
            const preloaded = (await loadedFor(index))?.get(claim.supervisorId);
            await acquire(limit);
            let info: RestorationInfo;
            try {
              info = await serialized(claim.supervisorId, () =>
                restoreOnce(host, claim.supervisorId, source, { epoch: claim.epoch, previousOwner: claim.previousOwner }, strand, preloaded),
              );
            } finally {
              release();
            }
            summary.results.push(info);
            summary.restored += 1;
            if (info.recoveryAction === 'restore_from_checkpoint') summary.fromCheckpoint += 1;
            if (info.recoveryAction === 'start_fresh') summary.startedFresh += 1;
          } catch (error) {
            const reason = errorText(error);
            summary.failed.push({ supervisorId: claim.supervisorId, error: reason });
            host.logger.error({ supervisorId: claim.supervisorId, err: reason }, 'supervisor could not be restored');
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(limit, claims.length) }, worker));
    },

    resync(supervisorId, epoch) {
      return serialized(supervisorId, async () => {
        const logger = host.logger.child({ supervisorId, epoch });
        await host.stopLocal(supervisorId);
        try {
          await reload(logger);
        } catch (error) {
          if (!isTransient(error)) throw error;
          logger.warn({ err: errorText(error) }, 'could not reload the supervisor while the database is away; retrying every lease round');
          strand(supervisorId, { kind: 'resync', epoch });
        }
      });

      async function reload(logger: Logger): Promise<void> {
        const db = host.database.db;
        const [raw, owner, taskRows] = await Promise.all([getSupervisorStateForRestoration(db, supervisorId), getOwner(db, supervisorId), listOpenSupervisorTasks(db, supervisorId)]);
        if (!raw || !owner || owner.owner !== host.daemonId || owner.epoch !== epoch) {
          logger.warn({ owner: owner?.owner ?? null, currentEpoch: owner?.epoch ?? null }, 'supervisor is no longer this daemon\'s: not reloaded');
          return;
        }
        const { outcome, snapshot } = validateRow(raw, taskRows);
        if (!snapshot) {
          logger.error({ errors: outcome.result.errors }, 'stored state is invalid: resume the supervisor to restore it from a checkpoint');
          return;
        }
        host.adopt(snapshot, { step: raw.step, epoch, checkpointSeq: raw.checkpointSeq }, raw.driver ?? 'manual').startHeartbeat();
        logger.info({ step: raw.step }, 'reloaded the stored state this daemon wrote');
      }
    },

    async retryStranded() {
      for (const [supervisorId, entry] of [...stranded]) {
        if (host.running(supervisorId)) {
          stranded.delete(supervisorId);
          continue;
        }
        stranded.delete(supervisorId);
        try {
          if (entry.kind === 'resync') await this.resync(supervisorId, entry.epoch);
          else await serialized(supervisorId, () => restoreOnce(host, supervisorId, entry.source, entry.claim, strand));
        } catch (error) {
          host.logger.warn({ supervisorId, err: errorText(error) }, 'retry of a stranded supervisor failed');
        }
      }
    },

    async settle() {
      await Promise.all([...inFlight.values()].map((running) => running.catch(() => undefined)));
    },

    inFlight: (supervisorId) => inFlight.has(supervisorId),
  };
}

/** When the supervisor was last known alive: its last heartbeat or its last save point, whichever came later. */
function lastSignOfLife(raw: SupervisorRestorationContext): Date {
  return raw.lastHeartbeat && raw.lastHeartbeat > raw.updatedAt ? raw.lastHeartbeat : raw.updatedAt;
}

/** The database was away (not the data): a later attempt may well succeed. */
function isTransient(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current instanceof DatabaseUnavailableError || current instanceof SaveFailedError) return true;
  }
  return false;
}

/** States that take no answer: a pending question there is out of place. */
const UNBLOCKED_STATES: ReadonlySet<string> = new Set(['initializing', 'idle', 'working', 'waiting_for_tasks']);

/**
 * Open work the tables know and the snapshot does not (a restore from an older checkpoint, or a row written outside
 * the runtime): questions still pending in supervisor_questions are pending again (and re-delivered with the rest),
 * pending ones that were answered (or withdrawn) meanwhile leave it, running tasks the snapshot lacks are waited on again,
 * and running ones whose outcome a later save point applied leave it (counted, not applied again).
 * A supervisor in a waiting state then settles where its open work puts it.
 */
export async function reconcileOpenWork(
  db: RuntimeHost['database']['db'],
  supervisorId: string,
  snapshot: SupervisorSnapshot,
  pendingRows: readonly QuestionRecord[],
  taskRows: readonly TaskRecord[],
): Promise<{ snapshot: SupervisorSnapshot; warnings: string[] }> {
  const context = snapshot.context;
  if (isTerminalState(snapshot.value as SupervisorState)) return { snapshot, warnings: [] };
  const warnings: string[] = [];
  const pendingIds = new Set(pendingRows.map((row) => row.id));
  const snapshotPending = new Set(context.pendingQuestions.map((question) => question.id));
  // Pending in the snapshot, but not pending in the table: answered or withdrawn since (or never recorded, kept as it is).
  const settled = await getQuestions(db, supervisorId, context.pendingQuestions.filter((question) => !pendingIds.has(question.id)).map((question) => question.id));
  const answered = new Map(settled.filter((row) => row.answer !== null).map((row) => [row.id, row]));
  const withdrawn = new Map(settled.filter((row) => row.answer === null && row.withdrawnAt).map((row) => [row.id, row]));
  const added: PendingQuestion[] = pendingRows
    .filter((row) => !snapshotPending.has(row.id))
    .map((row) => ({ id: row.id, question: row.question, choices: row.choices, context: row.context, askedAt: row.askedAt, deliveryCount: 1, lastDeliveredAt: row.askedAt }));
  const snapshotTasks = new Set(context.tasks.map((task) => task.id));
  // Running in the snapshot, finished in the table, and applied by a save point after the snapshot was taken: its
  // conversation entry is stored and the driver was told, so it leaves the snapshot without being applied again (one
  // that finished while nobody ran the supervisor has no applied step, and step 7 applies it).
  const applied = new Map(
    taskRows
      .filter((row) => (row.status === 'completed' || row.status === 'failed') && row.appliedStep !== null)
      .filter((row) => context.tasks.some((task) => task.id === row.id && task.status === 'running'))
      .map((row) => [row.id, row]),
  );
  const running = taskRows
    .filter((row) => (row.status === 'running' || row.status === 'pending') && !snapshotTasks.has(row.id))
    .map((row) => ({ id: row.id, description: row.description, status: 'running' as const, progress: row.progress, result: null, error: null, spawnedAt: row.createdAt, finishedAt: null }));
  if (answered.size === 0 && withdrawn.size === 0 && added.length === 0 && running.length === 0 && applied.size === 0) {
    // A pending question blocks: only waiting_for_user can take its answer (the machine never leaves one pending
    // elsewhere, so a stored state that does was written outside it). It waits for its human again.
    const value = String(snapshot.value);
    if (context.pendingQuestions.length === 0 || !UNBLOCKED_STATES.has(value)) return { snapshot, warnings };
    warnings.push(`state ${value} had ${context.pendingQuestions.length} pending question(s): waiting for the human again`);
    return { snapshot: supervisorMachine.resolveState({ value: 'waiting_for_user', context }), warnings };
  }
  for (const row of answered.values()) warnings.push(`question ${row.id} was answered after the restored state: applied its answer`);
  for (const row of withdrawn.values()) warnings.push(`question ${row.id} was withdrawn after the restored state: no longer pending`);
  for (const question of added) warnings.push(`question ${question.id} was asked after the restored state: pending again`);
  for (const task of running) warnings.push(`task ${task.id} was spawned after the restored state: waiting on it again`);
  for (const row of applied.values()) warnings.push(`task ${row.id} finished after the restored state and its outcome was applied then: not applied again`);
  const appliedRows = [...applied.values()];
  const next: SupervisorContext = {
    ...context,
    pendingQuestions: [...context.pendingQuestions.filter((question) => !answered.has(question.id) && !withdrawn.has(question.id)), ...added],
    answeredQuestionCount: context.answeredQuestionCount + answered.size,
    tasks: [...context.tasks.filter((task) => !applied.has(task.id)), ...running],
    completedTaskCount: context.completedTaskCount + appliedRows.filter((row) => row.status === 'completed').length,
    failedTaskCount: context.failedTaskCount + appliedRows.filter((row) => row.status === 'failed').length,
  };
  // A waiting state settles where its open work puts it; so does one that had not begun waiting (an older checkpoint
  // from before the question or task the tables now bring back), or the supervisor could not take the answer.
  const current = String(snapshot.value);
  const waiting = ['working', 'waiting_for_user', 'waiting_for_tasks'].includes(current);
  const begins = UNBLOCKED_STATES.has(current) && (added.length > 0 || running.length > 0);
  let value = waiting || begins ? deriveWaitingState(next) : current;
  if (UNBLOCKED_STATES.has(value) && next.pendingQuestions.length > 0) value = 'waiting_for_user';
  return { snapshot: supervisorMachine.resolveState({ value, context: next }), warnings };
}

/**
 * After a failed restore: interrupt the supervisor through its machine when its state was validated (a fenced full save,
 * so another daemon's newer epoch refuses it) and stop the copy. It stays owned by this daemon, so no other daemon
 * loops on it: the caller strands it for a retry every lease round when the database was only away; any other
 * failure needs a person, and a resume retries it.
 */
async function interruptAndStop(host: RuntimeHost, supervisorId: string, session: Session, reason: string, logger: Logger, claim: Claim): Promise<void> {
  try {
    const supervisor = host.running(supervisorId) ?? (session.snapshot ? host.adopt(session.snapshot, { step: session.step, epoch: claim.epoch }, session.raw?.driver ?? 'manual') : undefined);
    if (supervisor && !supervisor.stopped && supervisor.state !== 'interrupted' && !isTerminalState(supervisor.state)) {
      await supervisor.send({ type: 'INTERRUPT', reason: reason.slice(0, 2000), at: host.now().toISOString() });
    }
  } catch (error) {
    logger.warn({ err: errorText(error) }, 'could not interrupt the supervisor after its failed restore');
  }
  await host.stopLocal(supervisorId).catch(() => undefined);
}

/** What step 1 reads for one supervisor; restore-all reads it for a whole claimed batch in five queries. */
export interface Loaded {
  raw: SupervisorRestorationContext | null;
  taskRows: TaskRecord[];
  conversationStored: number;
  pendingRows: QuestionRecord[];
  /** Questions whose answer waits in the inbox (recorded by some daemon, not applied yet). */
  waitingAnswers: string[];
}

/** Step 1 for many supervisors at once: the same five reads, each one query for the batch. */
export async function loadMany(db: RuntimeHost['database']['db'], supervisorIds: readonly string[]): Promise<Map<string, Loaded>> {
  const [rows, tasks, conversations, pending, waiting] = await Promise.all([
    getSupervisorStatesForRestoration(db, supervisorIds),
    listOpenTasksOfSupervisors(db, supervisorIds),
    countConversations(db, supervisorIds),
    listPendingQuestionsOf(db, supervisorIds),
    listWaitingAnswers(db, supervisorIds),
  ]);
  return new Map(
    supervisorIds.map((id) => [
      id,
      { raw: rows.get(id) ?? null, taskRows: tasks.get(id) ?? [], conversationStored: conversations.get(id) ?? 0, pendingRows: pending.get(id) ?? [], waitingAnswers: waiting.get(id) ?? [] },
    ]),
  );
}

type StepName = RestorationStepName;
type Step = RestorationStep;
type Steps = Record<StepName, Step>;

/** Each running restoration's steps, by the actor system its machine runs in (one system per restoration). */
const stepsBySystem = new WeakMap<object, Steps>();

let provided: ReturnType<typeof restorationMachine.provide> | null = null;
/**
 * The restoration machine with its steps provided once: building a machine costs more than running it (XState resolves
 * every state node and transition), so every restoration runs the same one, and each step looks up its restoration's
 * closure by the actor system it was invoked in.
 */
function providedRestorationMachine(): ReturnType<typeof restorationMachine.provide> {
  if (provided) return provided;
  const actor = (name: StepName) =>
    fromPromise<RestorationStepOutput, RestorationStepInput>(async ({ system, input }) => {
      const steps = stepsBySystem.get(system);
      if (!steps) throw new Error(`restoration step ${name} ran outside a restoration`);
      return steps[name](input.context);
    });
  const actors = Object.fromEntries(RESTORATION_STEP_NAMES.map((name) => [name, actor(name)])) as Record<StepName, ReturnType<typeof actor>>;
  provided = restorationMachine.provide({ actors });
  return provided;
}

/** The protocol as an actor the inspector watches, step by step. */
async function runAsActor(input: { supervisorId: string; source: RestorationSource }, steps: Steps, inspect: NonNullable<RuntimeHost['inspectObserver']>): Promise<RestorationOutput> {
  const actor = createActor(providedRestorationMachine(), { input, id: `restoration:${input.supervisorId}`, inspect });
  // Its step actors run in this actor's system: that is how they find this restoration's steps.
  stepsBySystem.set(actor.system, steps);
  actor.start();
  return toPromise(actor);
}

/** How many claimed supervisors restore-all loads with one set of reads. */
const LOAD_BATCH = 250;

async function restoreOnce(
  host: RuntimeHost,
  supervisorId: string,
  source: RestorationSource,
  claim: Claim,
  strand: (supervisorId: string, entry: Stranded) => void,
  /** Step 1's reads, already made for a batch right after its claim; absent, step 1 reads them itself. */
  preloaded?: Loaded,
): Promise<RestorationInfo> {
  const started = performance.now();
  const db = host.database.db;
  const logger = host.logger.child({ supervisorId, epoch: claim.epoch });
  await host.stopLocal(supervisorId);
  // The driver hears nothing until the restoration is committed: reconciled task outcomes must not make it act on a
  // state the restoration context message has not described yet.
  host.holdDriver(supervisorId);
  const session: Session = { raw: null, snapshot: null, step: 0, supervisor: null, tasks: [], redelivered: [], contextMessage: '', failure: null, taskRows: [], conversationStored: 0, pendingRows: [], waitingAnswers: [] };
  const at = () => host.now().toISOString();
  // Pending questions delivered again: all but those whose answer already waits in the inbox.
  const redeliverable = (questions: readonly PendingQuestion[]) => questions.filter((question) => !session.waitingAnswers.includes(question.id));
  const need = <T>(value: T | null, what: string): T => {
    if (value === null) throw new Error(`restoration step ran without ${what}`);
    return value;
  };
  const step =
    (run: (context: RestorationMachineContext) => Promise<RestorationStepOutput>): Step =>
    async (context) => {
      try {
        return await run(context);
      } catch (error) {
        session.failure = error;
        throw error;
      }
    };

  const steps: Steps = {
    loadState: step(async () => {
      // Five reads at once, one round trip of waiting: the row, its open tasks, its conversation length, its pending
      // questions, the answers waiting in the inbox. None grows with the supervisor's age: finished tasks and answered questions are not read.
      const { raw, taskRows, conversationStored, pendingRows, waitingAnswers } = preloaded ?? need((await loadMany(db, [supervisorId])).get(supervisorId) ?? null, 'a load');
      session.waitingAnswers = waitingAnswers;
      session.raw = raw;
      session.taskRows = taskRows;
      session.conversationStored = conversationStored;
      session.pendingRows = pendingRows;
      return { found: session.raw !== null };
    }),

    validateState: step(async () => {
      const raw = need(session.raw, 'a row');
      const { outcome, snapshot } = validateRow(raw, session.taskRows);
      if (snapshot) {
        session.snapshot = snapshot;
        session.step = raw.step;
      } else {
        logger.warn({ errors: outcome.result.errors }, 'stored state is invalid: walking back through checkpoints');
      }
      return { validation: outcome.result, warnings: outcome.result.valid ? outcome.result.warnings : [] };
    }),

    findValidCheckpoint: step(async () => {
      const raw = need(session.raw, 'a row');
      const found = await newestValidCheckpoint(db, supervisorId, session.taskRows);
      if (!found) return { warnings: ['no valid checkpoint: starting fresh (the stored row is copied to supervisor_quarantine, its pending questions withdrawn and unfinished tasks failed; checkpoints are kept)'] };
      session.snapshot = found.snapshot;
      session.step = raw.step;
      const { checkpoint } = found;
      return { checkpointSeq: checkpoint.seq, warnings: [`stored state invalid; restored from checkpoint ${checkpoint.seq} (${checkpoint.reason})`, ...found.warnings] };
    }),

    startFresh: step(async () => {
      const raw = session.raw;
      // The old life's open work is closed with it: its pending questions withdrawn, its unfinished tasks failed.
      if (raw) await quarantineSupervisorRow(db, supervisorId, 'no valid state or checkpoint at restoration: the supervisor started fresh', { owner: host.daemonId, epoch: claim.epoch });
      const conversationLength = session.conversationStored;
      const [initial] = initialTransition(supervisorMachine, { supervisorId, name: raw?.name ?? `supervisor-${supervisorId.slice(0, 8)}`, ...(raw?.phase ? { phase: raw.phase } : {}), createdAt: at() });
      // Earlier conversation entries stay; the fresh supervisor appends after them.
      const fresh = conversationLength > 0 ? withContext(initial, { conversationLength }) : initial;
      session.supervisor = await host.createFresh(fresh, raw?.driver ?? 'manual', { step: (raw?.step ?? 0) + 1, epoch: claim.epoch });
      session.snapshot = session.supervisor.snapshot;
      return {};
    }),

    restoreConversation: step(async () => {
      const raw = need(session.raw, 'a row');
      let snapshot = need(session.snapshot, 'a snapshot');
      const stored = session.conversationStored;
      const kept: string[] = [];
      // Nothing was written after this state: a supervisor restored in initializing with this holds never took START.
      const neverStarted = String(snapshot.value) === 'initializing' && stored <= snapshot.context.conversationLength;
      if (stored > snapshot.context.conversationLength) {
        // An older checkpoint knows fewer entries than were written: keep them all, continue after the last.
        kept.push(`${stored - snapshot.context.conversationLength} conversation entries are newer than the restored state; kept`);
        snapshot = withContext(snapshot, { conversationLength: stored });
      }
      // Never started (initializing, or interrupted from it, with nothing written after): the messages it took in are
      // held for its driver, which hears them after the START this restoration gives it. One that started heard them.
      if (hasNotStarted(String(snapshot.value), snapshot.context) && stored <= snapshot.context.conversationLength) await host.holdUnstartedMessages(supervisorId, raw.driver ?? 'manual');
      let placement: Placement = { step: session.step, epoch: claim.epoch, checkpointSeq: raw.checkpointSeq };
      let reconciled = await reconcileOpenWork(db, supervisorId, snapshot, session.pendingRows, session.taskRows);
      if (neverStarted && String(reconciled.snapshot.value) !== 'initializing') {
        // Open work settles it out of initializing, where resumeSupervisor would send START: it takes START first (its
        // "started" entry, a save point of its own), then settles from idle where that work puts it.
        const starting = host.adopt(snapshot, placement, raw.driver ?? 'manual');
        await starting.send({ type: 'START', at: at() });
        snapshot = starting.snapshot;
        placement = { step: starting.step, epoch: claim.epoch, checkpointSeq: starting.committed.checkpointSeq ?? raw.checkpointSeq };
        await host.stopLocal(supervisorId);
        reconciled = await reconcileOpenWork(db, supervisorId, snapshot, session.pendingRows, session.taskRows);
      }
      session.supervisor = host.adopt(reconciled.snapshot, placement, raw.driver ?? 'manual');
      return { warnings: [...reconciled.warnings, ...kept] };
    }),

    redeliverQuestions: step(async () => {
      // The re-delivery itself commits with the RESTORED save point (step 9): count + 1, time, outbox rows.
      return {};
    }),

    reconcileTasks: step(async () => {
      const supervisor = need(session.supervisor, 'a supervisor');
      if (isTerminalState(supervisor.state)) return {};
      const running = supervisor.snapshot.context.tasks.filter((task) => task.status === 'running');
      if (running.length === 0) return {};
      // Read again, unless the load was made for this batch just now: a worker may have recorded an outcome since.
      // (An outcome recorded after either read also reaches the inbox, which the owner applies once this is done.)
      const { existing } = preloaded ? { existing: session.taskRows.filter((row) => running.some((task) => task.id === row.id)) } : await validateSpawnedTasks(db, supervisorId, running.map((task) => task.id));
      const warnings: string[] = [];
      for (const task of running) {
        const record = existing.find((candidate) => candidate.id === task.id);
        const about = { taskId: task.id, description: task.description };
        if (!record) {
          await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'failed', error: 'task record missing after restart; dropped', at: at() });
          session.tasks.push({ ...about, status: 'missing', action: 'dropped', outcome: null });
          warnings.push(`task ${task.id} no longer exists: dropped`);
        } else if (record.status === 'completed') {
          await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'completed', ...(record.result ? { result: record.result } : {}), at: at() });
          session.tasks.push({ ...about, status: 'completed', action: 'applied_completion', outcome: record.result });
        } else if (record.status === 'failed') {
          const error = record.error ?? 'failed while the daemon was down';
          await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'failed', error, at: at() });
          session.tasks.push({ ...about, status: 'failed', action: 'applied_failure', outcome: error });
        } else {
          session.tasks.push({ ...about, status: 'running', action: 'resumed', outcome: null });
        }
      }
      return { warnings };
    }),

    buildContextMessage: step(async (snapshot) => {
      const supervisor = need(session.supervisor, 'a supervisor');
      const raw = session.raw;
      session.contextMessage = buildRestorationContextMessage({
        context: supervisor.snapshot.context,
        state: supervisor.state,
        source,
        recoveryAction: snapshot.recoveryAction,
        checkpointSeq: snapshot.checkpointSeq,
        downSince: raw ? lastSignOfLife(raw).toISOString() : null,
        owners: { previous: claim.previousOwner, current: host.daemonId },
        restoredAt: at(),
        tasks: session.tasks,
        redelivered: redeliverable(supervisor.snapshot.context.pendingQuestions),
        answerWaiting: session.waitingAnswers,
        warnings: snapshot.warnings,
      });
      return { contextMessage: session.contextMessage };
    }),

    markRestored: step(async () => {
      const supervisor = need(session.supervisor, 'a supervisor');
      const answerWaiting = session.waitingAnswers;
      await supervisor.send({ type: 'RESTORED', at: at(), source, contextMessage: session.contextMessage, redeliver: true, ...(answerWaiting.length > 0 ? { answerWaiting } : {}) });
      // Committed; its re-delivery rows are queued for the relay, whose publish needs a database round trip first.
      crashPoint('restore.after-restored');
      session.redelivered = redeliverable(supervisor.snapshot.context.pendingQuestions);
      return {};
    }),

    resumeSupervisor: step(async (context) => {
      const supervisor = need(session.supervisor, 'a supervisor');
      // One made with start: false (held) stays as it is until someone STARTs or RESUMEs it: only an unheld one is begun
      // here, such as a spawn whose creation committed before its START did.
      const held = isHeld(supervisor.state, supervisor.snapshot.context);
      if (!held && supervisor.state === 'interrupted') await supervisor.send({ type: 'RESUME', at: at() });
      // Also after RESUME: a supervisor interrupted before it started resumes into initializing.
      if (!held && supervisor.state === 'initializing') await supervisor.send({ type: 'START', at: at() });
      // Timers re-armed once, from the stored heartbeat: the next beat keeps its remaining time.
      supervisor.startHeartbeat();
      await redispatchRunningTasks(host, supervisor, session.tasks);
      const info: RestorationInfo = {
        supervisorId,
        source,
        recoveryAction: context.recoveryAction,
        restoredState: supervisor.state as SupervisorState,
        restoredPhase: supervisor.snapshot.context.phase,
        checkpointSeq: context.checkpointSeq,
        restorationCount: supervisor.snapshot.context.restorationCount,
        questionsRedelivered: session.redelivered,
        tasksResumed: session.tasks.filter((task) => task.action === 'resumed').map((task) => task.taskId),
        tasksReconciled: session.tasks,
        validation: context.validation ?? { valid: false, errors: ['no stored state'], warnings: [], recoveryAction: 'start_fresh' },
        warnings: context.warnings,
        contextMessage: session.contextMessage,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      };
      return { result: info };
    }),
  };

  const input = { supervisorId, source };
  // The inspector shows the protocol as an actor; without one, the same steps run in the machine's order without an
  // actor, which costs a fraction of one.
  const output = host.inspectObserver ? await runAsActor(input, steps, host.inspectObserver) : await runRestorationSteps(input, steps);
  if (output.error || !output.result) {
    // Nothing half-restored stays running. A supervisor whose state was known is interrupted through its machine and the
    // normal (fenced) save path, so the row, its snapshot and its checkpoints agree; it stays owned by this daemon.
    host.releaseDriver(supervisorId, { discard: true });
    const reason = output.error ?? 'the protocol ended without a result';
    await interruptAndStop(host, supervisorId, session, `restore failed: ${reason}`, logger, claim);
    if (isTransient(session.failure)) strand(supervisorId, { kind: 'restore', claim, source });
    throw new RestorationFailedError(supervisorId, reason);
  }
  host.releaseDriver(supervisorId);
  const info = output.result;
  logger.info(
    {
      source,
      recoveryAction: info.recoveryAction,
      state: info.restoredState,
      checkpointSeq: info.checkpointSeq,
      questionsRedelivered: info.questionsRedelivered.length,
      tasksResumed: info.tasksResumed.length,
      tasksReconciled: info.tasksReconciled.filter((task) => task.action !== 'resumed').length,
      warnings: info.warnings.length,
      durationMs: info.durationMs,
    },
    info.recoveryAction === 'restore' ? 'supervisor restored' : `supervisor restored (${info.recoveryAction})`,
  );
  if (info.recoveryAction !== 'restore') logger.warn({ warnings: info.warnings }, 'supervisor restored with recovery');
  return info;
}

/**
 * Waiting on a running task only works if a worker still has it. JetStream keeps an unacknowledged spawn message for
 * the next worker; the in-process bus died with the process, so its running tasks are dispatched again (workers report
 * by task id, and a task's completion is applied once, so a duplicate run changes nothing).
 */
async function redispatchRunningTasks(host: RuntimeHost, supervisor: DurableSupervisor, tasks: TaskResumption[]): Promise<void> {
  if (host.transport?.kind !== 'in-process') return;
  const resumed = new Set(tasks.filter((task) => task.action === 'resumed').map((task) => task.taskId));
  const context = supervisor.snapshot.context;
  const messages = context.tasks
    .filter((task) => resumed.has(task.id) && task.status === 'running')
    .map((task) => taskSpawnOutbox(supervisor.id, task, host.subjectPrefix, `${task.id}:redispatch:${context.restorationCount}`));
  await enqueueOutbox(host.database.db, supervisor.id, messages);
}

