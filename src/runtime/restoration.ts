// Runs the restoration protocol (src/machines/restoration-machine.ts) for one supervisor or for all of them,
// providing each step with what it needs from the database and the runtime.

import { performance } from 'node:perf_hooks';
import { createActor, fromPromise, initialTransition, toPromise } from 'xstate';
import { errorText, SupervisorNotFoundError, SupervisorRuntimeError } from '../domain/errors.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationInfo, RestorationSource, SupervisorRestorationContext, TaskResumption } from '../domain/restoration.js';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import { buildRestorationContextMessage } from '../machines/restoration-context.js';
import { validateStoredState, type StoredStateCandidate, type TaskStatuses } from '../machines/restoration-guards.js';
import { restorationMachine, type RestorationStepInput, type RestorationStepOutput } from '../machines/restoration-machine.js';
import { supervisorMachine, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorContext } from '../machines/supervisor-types.js';
import {
  countConversation,
  enqueueOutbox,
  getSupervisorStateForRestoration,
  listCheckpoints,
  listRestorableSupervisorIds,
  quarantineSupervisorRow,
  markSupervisorInterrupted,
  validateSpawnedTasks,
  type CheckpointRecord,
} from '../persistence/supervisor-repository.js';
import type { DurableSupervisor } from './durable-supervisor.js';
import { taskSpawnOutbox } from './save-plan.js';
import type { SupervisorRuntime } from './supervisor-runtime.js';

export class RestorationFailedError extends SupervisorRuntimeError {
  override readonly name = 'RestorationFailedError';
  constructor(supervisorId: string, reason: string) {
    super(
      `Supervisor ${supervisorId} could not be restored: ${reason}. It is marked interrupted; fix the cause (often the database) ` +
        `and resume it with POST /supervisors/${supervisorId}/resume.`,
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

const lastSummaries = new WeakMap<SupervisorRuntime, RestoreAllSummary>();

/** The summary of the newest restoreAll on this runtime (what the daemon did at start), if any. */
export function lastRestoreAllSummary(runtime: SupervisorRuntime): RestoreAllSummary | undefined {
  return lastSummaries.get(runtime);
}

/** Make `runtime.restore(id, source)` run the protocol. */
export function attachRestoration(runtime: SupervisorRuntime): void {
  runtime.restorer = (id, source) => restoreSupervisor(runtime, id, source);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function snapshotTaskIds(snapshot: unknown): string[] {
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
function candidateFromCheckpoint(supervisorId: string, checkpoint: CheckpointRecord): StoredStateCandidate {
  const context = isRecord(checkpoint.snapshot) && isRecord(checkpoint.snapshot.context) ? checkpoint.snapshot.context : {};
  return {
    supervisorId,
    state: checkpoint.state,
    progress: context.progress,
    errorMessage: typeof context.errorMessage === 'string' ? context.errorMessage : null,
    spawnedTaskIds: snapshotTaskIds(checkpoint.snapshot),
    pendingQuestions: context.pendingQuestions,
    snapshot: checkpoint.snapshot,
    machineVersion: checkpoint.machineVersion,
  };
}

function withContext(snapshot: SupervisorSnapshot, patch: Partial<SupervisorContext>): SupervisorSnapshot {
  return supervisorMachine.resolveState({ value: snapshot.value as string, context: { ...snapshot.context, ...patch } });
}

async function taskStatuses(runtime: SupervisorRuntime, supervisorId: string, ids: readonly string[]): Promise<TaskStatuses> {
  const { existing } = await validateSpawnedTasks(runtime.database.db, supervisorId, [...new Set(ids)]);
  return new Map(existing.map((task) => [task.id, task.status]));
}

interface Session {
  raw: SupervisorRestorationContext | null;
  snapshot: SupervisorSnapshot | null;
  step: number;
  supervisor: DurableSupervisor | null;
  tasks: TaskResumption[];
  redelivered: PendingQuestion[];
  contextMessage: string;
}

const inFlight = new WeakMap<SupervisorRuntime, Map<string, Promise<unknown>>>();

/**
 * Run the protocol for one supervisor, stopping its live actor first if this daemon runs it. Restorations of one id
 * run one after the other: two at once would stop each other's supervisor and leave it running nowhere.
 */
export function restoreSupervisor(runtime: SupervisorRuntime, supervisorId: string, source: RestorationSource): Promise<RestorationInfo> {
  let running = inFlight.get(runtime);
  if (!running) inFlight.set(runtime, (running = new Map()));
  const previous = running.get(supervisorId) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => restoreOnce(runtime, supervisorId, source));
  running.set(supervisorId, next);
  const forget = () => {
    if (running?.get(supervisorId) === next) running.delete(supervisorId);
  };
  next.then(forget, forget);
  return next;
}

async function restoreOnce(runtime: SupervisorRuntime, supervisorId: string, source: RestorationSource): Promise<RestorationInfo> {
  const started = performance.now();
  const db = runtime.database.db;
  const logger = runtime.logger.child({ supervisorId });
  await runtime.stop(supervisorId);
  // The driver hears nothing until the restoration is committed: reconciled task outcomes must not make it act on a
  // state the restoration context message has not described yet.
  runtime.holdDriver(supervisorId);
  const session: Session = { raw: null, snapshot: null, step: 0, supervisor: null, tasks: [], redelivered: [], contextMessage: '' };
  const at = () => runtime.now().toISOString();
  const need = <T>(value: T | null, what: string): T => {
    if (value === null) throw new Error(`restoration step ran without ${what}`);
    return value;
  };
  const step = (run: () => Promise<RestorationStepOutput>) => fromPromise<RestorationStepOutput, RestorationStepInput>(run);

  const machine = restorationMachine.provide({
    actors: {
      loadState: step(async () => {
        session.raw = await getSupervisorStateForRestoration(db, supervisorId);
        return { found: session.raw !== null };
      }),

      validateState: step(async () => {
        const raw = need(session.raw, 'a row');
        const tasks = await taskStatuses(runtime, supervisorId, [...raw.spawnedTaskIds, ...snapshotTaskIds(raw.snapshot)]);
        const outcome = validateStoredState(candidateFromRow(raw), tasks);
        if (outcome.snapshot) {
          // Heartbeat saves touch only these three columns, so the row is newer than its snapshot for them.
          session.snapshot = withContext(outcome.snapshot, {
            currentActivity: raw.currentActivity,
            progress: raw.progress,
            lastHeartbeatAt: raw.lastHeartbeat ? raw.lastHeartbeat.toISOString() : outcome.snapshot.context.lastHeartbeatAt,
          });
          session.step = raw.step;
        } else {
          logger.warn({ errors: outcome.result.errors }, 'stored state is invalid: walking back through checkpoints');
        }
        return { validation: outcome.result, warnings: outcome.result.valid ? outcome.result.warnings : [] };
      }),

      findValidCheckpoint: step(async () => {
        const raw = need(session.raw, 'a row');
        let before: number | undefined;
        for (;;) {
          const page = await listCheckpoints(db, supervisorId, { limit: 25, ...(before !== undefined ? { beforeSeq: before } : {}) });
          for (const checkpoint of page) {
            const candidate = candidateFromCheckpoint(supervisorId, checkpoint);
            const outcome = validateStoredState(candidate, await taskStatuses(runtime, supervisorId, candidate.spawnedTaskIds), { fallbackAction: 'restore_from_checkpoint' });
            if (outcome.snapshot) {
              session.snapshot = outcome.snapshot;
              session.step = raw.step;
              return { checkpointSeq: checkpoint.seq, warnings: [`stored state invalid; restored from checkpoint ${checkpoint.seq} (${checkpoint.reason})`, ...outcome.result.warnings] };
            }
          }
          if (page.length < 25) break;
          before = page[page.length - 1]?.seq;
        }
        return { warnings: ['no valid checkpoint: starting fresh (the stored row is copied to supervisor_quarantine; checkpoints are kept)'] };
      }),

      startFresh: step(async () => {
        const raw = session.raw;
        if (raw) await quarantineSupervisorRow(db, supervisorId, 'no valid state or checkpoint at restoration');
        const conversationLength = await countConversation(db, supervisorId);
        const [initial] = initialTransition(supervisorMachine, { supervisorId, name: raw?.name ?? `supervisor-${supervisorId.slice(0, 8)}`, ...(raw?.phase ? { phase: raw.phase } : {}), createdAt: at() });
        // Earlier conversation entries stay; the fresh supervisor appends after them.
        const fresh = conversationLength > 0 ? withContext(initial, { conversationLength }) : initial;
        session.supervisor = await runtime.createFresh(fresh, raw?.driver ?? 'manual', (raw?.step ?? 0) + 1);
        session.snapshot = session.supervisor.snapshot;
        return {};
      }),

      restoreConversation: step(async () => {
        const raw = need(session.raw, 'a row');
        let snapshot = need(session.snapshot, 'a snapshot');
        const stored = await countConversation(db, supervisorId);
        const warnings: string[] = [];
        if (stored > snapshot.context.conversationLength) {
          // An older checkpoint knows fewer entries than were written: keep them all, continue after the last.
          warnings.push(`${stored - snapshot.context.conversationLength} conversation entries are newer than the restored state; kept`);
          snapshot = withContext(snapshot, { conversationLength: stored });
        }
        session.supervisor = runtime.adopt(snapshot, session.step, raw.driver ?? 'manual');
        return { warnings };
      }),

      redeliverQuestions: step(async () => {
        // The re-delivery itself commits with the RESTORED save point (step 9): count + 1, time, outbox rows.
        return {};
      }),

      reconcileTasks: step(async () => {
        const supervisor = need(session.supervisor, 'a supervisor');
        if (isTerminalState(supervisor.state)) return {};
        const running = supervisor.snapshot.context.tasks.filter((task) => task.status === 'running');
        const { existing } = await validateSpawnedTasks(db, supervisorId, running.map((task) => task.id));
        const warnings: string[] = [];
        for (const task of running) {
          const record = existing.find((candidate) => candidate.id === task.id);
          if (!record) {
            await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'failed', error: 'task record missing after restart; dropped', at: at() });
            session.tasks.push({ taskId: task.id, status: 'missing', action: 'dropped' });
            warnings.push(`task ${task.id} no longer exists: dropped`);
          } else if (record.status === 'completed') {
            await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'completed', ...(record.result ? { result: record.result } : {}), at: at() });
            session.tasks.push({ taskId: task.id, status: 'completed', action: 'applied_completion' });
          } else if (record.status === 'failed') {
            await supervisor.send({ type: 'TASK_EVENT', taskId: task.id, kind: 'failed', error: record.error ?? 'failed while the daemon was down', at: at() });
            session.tasks.push({ taskId: task.id, status: 'failed', action: 'applied_failure' });
          } else {
            session.tasks.push({ taskId: task.id, status: 'running', action: 'resumed' });
          }
        }
        return { warnings };
      }),

      buildContextMessage: step(async () => {
        const supervisor = need(session.supervisor, 'a supervisor');
        const snapshot = machineSnapshot.getSnapshot().context;
        const raw = session.raw;
        session.contextMessage = buildRestorationContextMessage({
          context: supervisor.snapshot.context,
          state: supervisor.state,
          source,
          recoveryAction: snapshot.recoveryAction,
          checkpointSeq: snapshot.checkpointSeq,
          downSince: raw ? (raw.lastHeartbeat ?? raw.updatedAt).toISOString() : null,
          restoredAt: at(),
          tasks: session.tasks,
          redelivered: supervisor.snapshot.context.pendingQuestions,
          warnings: snapshot.warnings,
        });
        return { contextMessage: session.contextMessage };
      }),

      markRestored: step(async () => {
        const supervisor = need(session.supervisor, 'a supervisor');
        await supervisor.send({ type: 'RESTORED', at: at(), source, contextMessage: session.contextMessage, redeliver: true });
        session.redelivered = supervisor.snapshot.context.pendingQuestions;
        return {};
      }),

      resumeSupervisor: step(async () => {
        const supervisor = need(session.supervisor, 'a supervisor');
        if (supervisor.state === 'interrupted') await supervisor.send({ type: 'RESUME', at: at() });
        else if (supervisor.state === 'initializing') await supervisor.send({ type: 'START', at: at() });
        // Timers re-armed once, from the stored heartbeat: the next beat keeps its remaining time.
        supervisor.startHeartbeat();
        await redispatchRunningTasks(runtime, supervisor, session.tasks);
        const context = machineSnapshot.getSnapshot().context;
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
    },
  });

  const machineSnapshot = createActor(machine, {
    input: { supervisorId, source },
    id: `restoration:${supervisorId}`,
    ...(runtime.inspectObserver ? { inspect: runtime.inspectObserver } : {}),
  });
  machineSnapshot.start();
  const output = await toPromise(machineSnapshot);
  if (output.error || !output.result) {
    // Nothing half-restored stays running.
    runtime.releaseDriver(supervisorId, { discard: true });
    await runtime.stop(supervisorId).catch(() => undefined);
    throw new RestorationFailedError(supervisorId, output.error ?? 'the protocol ended without a result');
  }
  runtime.releaseDriver(supervisorId);
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
async function redispatchRunningTasks(runtime: SupervisorRuntime, supervisor: DurableSupervisor, tasks: TaskResumption[]): Promise<void> {
  if (runtime.transport?.kind !== 'in-process') return;
  const resumed = new Set(tasks.filter((task) => task.action === 'resumed').map((task) => task.taskId));
  const context = supervisor.snapshot.context;
  const messages = context.tasks
    .filter((task) => resumed.has(task.id) && task.status === 'running')
    .map((task) => taskSpawnOutbox(supervisor.id, task, runtime.subjectPrefix, `${task.id}:redispatch:${context.restorationCount}`));
  await enqueueOutbox(runtime.database.db, supervisor.id, messages);
}

/** Restore every supervisor not completed or failed, `concurrency` at a time. One that fails is marked interrupted; the others come back. */
export async function restoreAll(
  runtime: SupervisorRuntime,
  options: { source?: RestorationSource; concurrency?: number } = {},
): Promise<RestoreAllSummary> {
  const started = performance.now();
  const ids = await listRestorableSupervisorIds(runtime.database.db);
  const summary: RestoreAllSummary = { total: ids.length, restored: 0, fromCheckpoint: 0, startedFresh: 0, failed: [], durationMs: 0, results: [] };
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      try {
        const info = await restoreSupervisor(runtime, id, options.source ?? 'daemon_restart');
        summary.results.push(info);
        summary.restored += 1;
        if (info.recoveryAction === 'restore_from_checkpoint') summary.fromCheckpoint += 1;
        if (info.recoveryAction === 'start_fresh') summary.startedFresh += 1;
      } catch (error) {
        const reason = errorText(error);
        summary.failed.push({ supervisorId: id, error: reason });
        runtime.logger.error({ supervisorId: id, err: reason }, 'supervisor could not be restored; marked interrupted');
        await markSupervisorInterrupted(runtime.database.db, id, `restore failed: ${reason}`.slice(0, 2000)).catch(
          (markError: unknown) => runtime.logger.error({ supervisorId: id, err: errorText(markError) }, 'could not mark the supervisor interrupted either'),
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 16, ids.length)) }, worker));
  summary.durationMs = Math.round(performance.now() - started);
  lastSummaries.set(runtime, summary);
  runtime.logger.info(
    { total: summary.total, restored: summary.restored, fromCheckpoint: summary.fromCheckpoint, startedFresh: summary.startedFresh, failed: summary.failed.length, durationMs: summary.durationMs },
    'restore-all finished',
  );
  return summary;
}

/** Resume one supervisor by hand (the API's POST /supervisors/:id/resume): 404 for an id that was never stored. */
export async function resumeSupervisor(runtime: SupervisorRuntime, supervisorId: string): Promise<RestorationInfo> {
  if (!(await getSupervisorStateForRestoration(runtime.database.db, supervisorId))) throw new SupervisorNotFoundError(supervisorId);
  return restoreSupervisor(runtime, supervisorId, 'manual');
}
