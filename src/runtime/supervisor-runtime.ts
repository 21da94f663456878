// The orchestrator runtime: a thin composition that builds and owns the durable supervisors, the restorer, the lease
// keeper, and the messaging parts (outbox relay, inbound consumers, inbox), wires them through a private host interface,
// and exposes commands and queries only. The one place machines meet persistence and transport.

import { createRuntimeMetrics } from './metrics.js';
import { listDeadLetters, type DeadLetter } from '../persistence/ownership/dead-letters.js';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { sql } from 'kysely';
import { initialTransition } from 'xstate';
import type { ConversationEntry } from '../domain/conversation.js';
import { DatabaseUnavailableError, EventRefusedError, errorText, InvalidSupervisorDataError, SupervisorNotFoundError, UnknownDriverError, type InvalidSnapshotError } from '../domain/errors.js';
import { isCallerId, isUuid } from '../domain/ids.js';
import type { RestorationInfo, RestorationSource } from '../domain/restoration.js';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import { validateStoredState } from '../machines/restoration-guards.js';
import { supervisorMachine, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorEffect, SupervisorEvent } from '../machines/supervisor-types.js';
import { hasNotStarted, isHeld } from '../machines/supervisor-updates.js';
import type { Database, DatabaseHealth } from '../persistence/database.js';
import { getOwner } from '../persistence/ownership/claims.js';
import { OwnershipLostError, SupervisorOwnedElsewhereError } from '../persistence/ownership/errors.js';
import { listMemberships, type MembershipView } from '../persistence/ownership/memberships.js';
import {
  getCheckpoint,
  getConversation,
  getForkLineage,
  getMessage,
  getSupervisorState,
  getSupervisorStateForRestoration,
  getQuestion,
  getTask,
  listCheckpoints,
  listMessages,
  listQuestions,
  listSupervisorOwners,
  listSupervisors,
  listSupervisorTasks,
  StaleWriteError,
  type CheckpointRecord,
  type ForkLineage,
  type ForkOrigin,
  type MessageRecord,
  type QuestionRecord,
  type TaskRecord,
  type ListSupervisorsOptions,
  type SupervisorDetailedState,
} from '../persistence/supervisor-repository.js';
import type { Transport, TransportHealth } from '../transport/transport.js';
import { manualDriver, type AgentDriver, type ResumedSupervisor, type SupervisorCommand, type SupervisorHandle } from './agent-driver.js';
import { DurableSupervisor, type CommittedStep, type DurableSupervisorDeps, type SaveRetryPolicy } from './durable-supervisor.js';
import { CheckpointNotFoundError, ForkRefusedError, MessageAlreadyReceivedError, QuestionAlreadyAnsweredError, RuntimeStoppedError, SaveFailedError, SupervisorNotRunningError, TaskNotFoundError } from './errors.js';
import { emptyInboundCounts, type InboundConsumerStats } from './inbound-consumers.js';
import { startOwnerInbox, type InboxApplierOptions, type OwnerInbox } from './inbox-applier.js';
import { createRuntimeInspector, type InspectOption } from './inspection.js';
import { checkStoredStates, type CheckOptions, type CheckReport } from './check.js';
import { createLeaseKeeper, DEFAULT_LEASE_SETTINGS, type LeaseSettings, type LeaseStats } from './lease-keeper.js';
import { silentLogger, type Logger } from './logger.js';
import { startMessaging, type Messaging, type MessagingOptions } from './messaging.js';
import type { TaskWorkerWatchStats } from './task-worker-watch.js';
import type { OutboxRelayStats } from './outbox-relay.js';
import { createRegistryStore, type RegistryEntry, type RegistryStore } from './registry.js';
import { createSaveBatcher, type SaveBatcherStats } from './save-batcher.js';
import { createCheckpointPruner, DEFAULT_CHECKPOINT_RETENTION, type CheckpointRetention } from './checkpoint-pruner.js';
import { candidateFromCheckpoint, createRestorer, emptyRestoreAllSummary, type RestoreAllSummary, type RestoreOptions } from './restoration.js';
import type { Placement, RuntimeHooks, RuntimeHost } from './runtime-host.js';
import { createScriptedDriver } from './scripted-driver.js';
import { planFork, type ForkedTask, type ForkInput } from './fork.js';
import { OPENAI_DRIVER_NAME } from './llm/openai-driver.js';
import type { TaskWorkerStats } from './task-worker.js';

/** Restores in parallel at startup and in claim rounds; SUPERVISOR_RUNTIME_RESTORE_CONCURRENCY in the daemon. */
const DEFAULT_RESTORE_CONCURRENCY = 128;

export interface RuntimeOptions {
  database: Database;
  /** Carries questions, task spawns and state changes out, answers and task events in. Optional for library use. */
  transport?: Transport;
  inspect?: InspectOption;
  logger?: Logger;
  /** Agent drivers by name; `manual` and `scripted` are always there. */
  drivers?: AgentDriver[];
  /** Driver for supervisors spawned without one (default `manual`). */
  defaultDriver?: string;
  /** Lightweight heartbeat save every this many ms (0 = off; default 15 000). */
  heartbeatIntervalMs?: number;
  saveRetry?: Partial<SaveRetryPolicy>;
  /** Prefix of every transport subject (isolates tests and environments on one NATS). */
  subjectPrefix?: string;
  /** This daemon's name: the owner its supervisors' rows name. Unique per live process (default host-pid-random). */
  daemonId?: string;
  /** Membership lease: TTL, renewal interval, claim batch size, and the API URL other daemons point requests to. */
  leases?: Partial<LeaseSettings>;
  /** Checkpoints kept per supervisor (default 50), pruned in the background every `intervalMs` (default 5 s). */
  checkpointRetention?: Partial<CheckpointRetention>;
  now?: () => Date;
}

export interface SpawnInput {
  /** A UUID; made up when left out. */
  id?: string;
  name: string;
  phase?: string;
  /** Agent driver name (default: the runtime's default driver). */
  driver?: string;
  /** Send START right after creation (default true). */
  start?: boolean;
}

export interface ForkResult {
  supervisor: DurableSupervisor;
  forkedFrom: { supervisorId: string; checkpointSeq: number };
  /** Each running task of the checkpoint and the task spawned for the fork in its place. */
  tasks: ForkedTask[];
  /** The pending questions asked again under the fork (same ids). */
  questionIds: string[];
}

export interface RuntimeStartOptions {
  /** Claim and restore every supervisor that runs nowhere (default true). */
  restore?: boolean;
  /** Restores in parallel (default 128: their RESTORED save points share group commits, so more at once means fewer, larger statements). */
  restoreConcurrency?: number;
  /** Relay and consumers (default: started when the runtime has a transport, without an embedded worker). */
  messaging?: MessagingOptions | false;
  /**
   * The inbox applier, which applies what any daemon recorded for supervisors this one owns. start() runs it with or
   * without messaging (it needs only the database); these settings, else `messaging.inbox`.
   */
  inbox?: InboxApplierOptions;
}

export interface RuntimeHealth {
  ok: boolean;
  database: DatabaseHealth;
  transport: TransportHealth | { ok: true; kind: 'none'; detail: string };
}

export interface RuntimeStats {
  leases: LeaseStats;
  /** Supervisors running in this daemon. */
  running: number;
  relay: OutboxRelayStats | null;
  /** Null until the inbox runs; while messaging is not started (no transport yet), only what the applier counted. */
  inbound: InboundConsumerStats | null;
  worker: TaskWorkerStats | null;
  /** Whether anyone takes the tasks on tasks.spawn (null without a transport). */
  taskWorkers: TaskWorkerWatchStats | null;
  /** Group commit: statements sent and the save points and heartbeats they carried. */
  saves: SaveBatcherStats;
  /** Checkpoint retention rounds and the checkpoints they deleted. */
  checkpoints: { rounds: number; deleted: number };
}

export interface SupervisorRuntime {
  readonly daemonId: string;
  readonly subjectPrefix: string;
  /** The live registry (an @xstate/store store) of supervisors running here. */
  readonly registry: RegistryStore;
  /** What carries messages: 'nats', 'in-process', or 'none'. */
  readonly transportKind: Transport['kind'] | 'none';

  /** Join as a daemon, claim and restore what runs nowhere, start messaging and the claim rounds. */
  start(options?: RuntimeStartOptions): Promise<RestoreAllSummary>;
  /** Start relay and inbound consumers, and the inbox applier unless it runs (start() does this); for library use with a transport. */
  startMessaging(options: MessagingOptions): Promise<Messaging>;
  /** Record where this daemon's API answers (other daemons name it in their 409 for supervisors this one owns). */
  advertise(url: string): Promise<void>;
  /** Claim every supervisor that runs nowhere (no owner, owner's lease ended, this id's previous run) and restore it. */
  restoreAll(options?: { concurrency?: number }): Promise<RestoreAllSummary>;

  /** Create a supervisor owned by this daemon, commit it, and (by default) START it. Resolves after the commits. */
  spawn(input: SpawnInput): Promise<DurableSupervisor>;
  /**
   * Make a new supervisor from a checkpoint of another (default: its newest), owned by this daemon: the checkpoint's
   * state and the conversation up to it, its pending questions asked again and its running tasks spawned again under
   * new ids, all the fork's own, and a notice for its LLM. The source is only read. CheckpointNotFoundError for a
   * checkpoint not stored; ForkRefusedError for a finished or invalid one.
   */
  fork(sourceId: string, input?: ForkInput): Promise<ForkResult>;
  /**
   * Send a message from one supervisor (running here) to another, wherever it runs: committed with the sender's step
   * (its conversation, its supervisor_messages row and the outbox message), delivered over the transport to the
   * receiver's inbox and taken in once by the receiver's owner (its conversation and row; its driver's onMessage).
   * With the caller's `messageId`, a retry of the same message is recognised (`replayed: true`) and sent once.
   */
  sendMessage(from: string, message: { to: string; body: string; messageId?: string }): Promise<{ messageId: string; replayed?: true }>;
  /** The messages a supervisor sent and took in, newest first (from supervisor_messages). */
  messages(id: string, options?: { direction?: 'sent' | 'received'; limit?: number }): Promise<MessageRecord[]>;
  /** Where a supervisor was forked from, and the forks made from it (newest first). */
  lineage(id: string, options?: { limit?: number }): Promise<ForkLineage>;
  /** The running supervisor, if this daemon runs it. */
  get(id: string): DurableSupervisor | undefined;
  list(): DurableSupervisor[];
  /** Apply one event; resolves with the committed step. EventRefusedError when a guard refuses it. */
  send(id: string, command: SupervisorCommand): Promise<CommittedStep>;
  /**
   * Ask a question. With the caller's `questionId`, a retry of the same question (same text, choices and context) is
   * recognised and answers `replayed: true` without asking twice; a different question under a used id is refused.
   */
  askQuestion(id: string, question: { question: string; choices?: string[]; context?: string; questionId?: string }): Promise<{ questionId: string; replayed?: true }>;
  /** First answer wins: a second answer raises QuestionAlreadyAnsweredError carrying the first. */
  answerQuestion(id: string, questionId: string, answer: string): Promise<CommittedStep>;
  /** Take back a pending question: it no longer needs an answer, and an answer that arrives later is refused. */
  withdrawQuestion(id: string, questionId: string, reason?: string): Promise<CommittedStep>;
  /** Spawn a task. With the caller's `taskId`, a retry (same description) answers `replayed: true` without spawning twice. */
  spawnTask(id: string, task: { description: string; taskId?: string }): Promise<{ taskId: string; replayed?: true }>;
  /** Route a task's progress, completion or failure to the supervisor that spawned it. */
  reportTaskEvent(taskId: string, event: { type: 'progress' | 'completed' | 'failed'; progress?: number; result?: string; error?: string }): Promise<CommittedStep>;
  /** Bring a supervisor back through the restoration protocol with this source, claiming it for this daemon. */
  restore(id: string, source: RestorationSource, options?: RestoreOptions): Promise<RestorationInfo>;
  /** An operator's resume (source `manual`): 404 for an unknown id unless `startFreshIfMissing`. */
  resume(id: string, options?: RestoreOptions): Promise<RestorationInfo>;
  /** Stop running the supervisor here (after its queued saves); it stays owned by this daemon until shutdown. */
  stop(id: string): Promise<void>;

  /** The stored detailed state (fresh read after commits). */
  describe(id: string): Promise<SupervisorDetailedState>;
  /** One page, newest first; `next` (null on the last page) is the `after` of the next one. */
  listSupervisors(options?: ListSupervisorsOptions): Promise<{ supervisors: SupervisorDetailedState[]; invalid: InvalidSnapshotError[]; next: string | null; total: number }>;
  checkpoints(id: string, options?: { limit?: number; beforeSeq?: number }): Promise<CheckpointRecord[]>;
  conversation(id: string, options?: { fromSeq?: number; limit?: number }): Promise<ConversationEntry[]>;
  /** Every question the supervisor asked, newest first, with its answer once it has one (from supervisor_questions). */
  questions(id: string, options?: { answered?: boolean; limit?: number }): Promise<QuestionRecord[]>;
  /** Every task the supervisor spawned, running and finished, with status and result (from supervisor_tasks). */
  tasks(id: string): Promise<TaskRecord[]>;
  /** Inbound messages terminated because no retry could apply them (malformed, refused, unknown target), newest first. */
  deadLetters(options?: { limit?: number }): Promise<{ deadLetters: DeadLetter[]; total: number }>;
  /** The newest restore-all (what the daemon claimed and restored at start), if any. */
  lastRestoreAll(): RestoreAllSummary | undefined;
  /** The restoration dry-run over the stored supervisors (or the ids given): what a restore would do, changing nothing. */
  check(options?: CheckOptions): Promise<CheckReport>;
  /** Every daemon the database knows, live ones first, with the supervisors each owns. */
  daemons(): Promise<MembershipView[]>;
  stats(): RuntimeStats;
  /** Prometheus exposition of this runtime's metrics (what GET /metrics answers). */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** Run a checkpoint-retention round now (it also runs in the background); resolves with the checkpoints deleted. */
  pruneCheckpoints(): Promise<number>;
  health(): Promise<RuntimeHealth>;
  /** Flush queued saves, stop actors and background work, release the leases, close transport and database. */
  shutdown(options?: { closeDatabase?: boolean; closeTransport?: boolean }): Promise<void>;
}

/** The detail of the InvalidSupervisorDataError of a spawn under an id that is in use: the API checks it for a retry. */
export const ID_TAKEN = 'is already taken by another supervisor';

const invalidQuestionId = (id: string) =>
  new InvalidSupervisorDataError(id, 'questionId', 'must be 1–128 letters, digits, "_" or "-" (it is used in URLs and subjects as it is)');

export function defaultDaemonId(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

type ReceivedMessage = Parameters<NonNullable<AgentDriver['onMessage']>>[1];

/** Messages a restored supervisor that never started took in, read back for its driver (the newest this many). */
const MAX_UNSTARTED_MESSAGES = 1_000;

/** Thrown inside a send's turn when the stored message is the same one (a retry): answered as a replay. */
class MessageReplayed extends Error {
  override readonly name = 'MessageReplayed';
}

/** A new supervisor's first steps once its creation committed (`takenUp`: an earlier attempt's creation, taken up by its retry). */
type Begin = (supervisor: DurableSupervisor, takenUp: boolean) => Promise<void>;

/** What a caller-chosen id was created as: a retry takes up only a creation of its own kind. */
type CreationKind = 'spawn' | 'fork';

/** Thrown inside an ask's turn when the stored question is the same ask (a retry): answered as a replay, never seen outside. */
class AskReplayed extends Error {
  override readonly name = 'AskReplayed';
}

export function createRuntime(options: RuntimeOptions): SupervisorRuntime {
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const database = options.database;
  const daemonId = options.daemonId ?? defaultDaemonId();
  const subjectPrefix = options.subjectPrefix ?? '';
  const registry = createRegistryStore();
  const inspector = createRuntimeInspector(options.inspect, (error) => logger.error({ err: errorText(error) }, 'the inspector could not be loaded: nothing is inspected; reinstall @statelyai/inspect or drop --inspect'));
  const supervisors = new Map<string, DurableSupervisor>();
  const drivers = new Map<string, AgentDriver>([
    [manualDriver.name, manualDriver],
    ['scripted', createScriptedDriver()],
  ]);
  for (const driver of options.drivers ?? []) drivers.set(driver.name, driver);
  const defaultDriver = options.defaultDriver ?? manualDriver.name;
  const hooks: RuntimeHooks = { onCommitted: [], onShutdown: [] };
  // Driver callbacks held back while a supervisor is restored: the LLM hears the restoration first, then the rest.
  const heldDrivers = new Map<string, Array<() => void>>();
  // Supervisors being restored: not running for callers yet (get() is undefined, `live` false), and events sent to
  // them from outside wait until the restoration is stored instead of slipping in between its steps.
  const restoring = new Map<string, { done: Promise<void>; resolve: () => void }>();
  // Caller-chosen ids whose creation's outcome is unknown (the database stopped answering mid-statement).
  const unsettledCreations = new Map<string, CreationKind>();
  /**
   * Messages taken in before the supervisor started (in `initializing`, or interrupted from it): its driver hears them
   * (onMessage, in the order taken in) right after START, as the START's own callbacks. A restoration of a supervisor
   * that never started reads them back (holdUnstartedMessages); one that started has none held.
   */
  const unstartedMessages = new Map<string, ReceivedMessage[]>();
  /** Forks whose RESUME and START are their fork's: the driver hears onForked (started) instead of onResumed and onStarted. */
  const forkBegins = new Set<string>();
  /** Creations whose first save point is in flight: owned here once it commits, not running until it is answered. */
  const creating = new Set<string>();
  let stopping = false;
  let lastSummary: RestoreAllSummary | undefined;
  let messaging: Messaging | null = null;
  /** The owner's side of the inbox: one per runtime, started by start() or startMessaging(), whichever comes first. */
  let inbox: OwnerInbox | null = null;
  let inboxStarting: Promise<OwnerInbox> | null = null;
  let unlistenLeases: (() => Promise<void>) | null = null;
  /** Restores in parallel, for the claim rounds (start() may set it). */
  let restoreConcurrency = DEFAULT_RESTORE_CONCURRENCY;

  const saves = createSaveBatcher(database);
  const pruner = createCheckpointPruner(database, daemonId, { ...DEFAULT_CHECKPOINT_RETENTION, ...options.checkpointRetention }, logger);
  const deps: DurableSupervisorDeps = {
    database,
    saves,
    logger,
    now,
    subjectPrefix,
    owner: daemonId,
    inspect: inspector.observer,
    retry: { attempts: options.saveRetry?.attempts ?? 5, baseDelayMs: options.saveRetry?.baseDelayMs ?? 100 },
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    onDesynchronized: (supervisor) => {
      if (stopping || supervisors.get(supervisor.id) !== supervisor) return;
      // Our own copy fell behind a row this daemon wrote (a lost reply): take the stored state back, without a restoration.
      void restorer.resync(supervisor.id, supervisor.epoch).catch((error: unknown) =>
        logger.error({ supervisorId: supervisor.id, err: errorText(error) }, 'could not reload the supervisor; resume it with POST /supervisors/:id/resume'),
      );
    },
    onOwnershipLost: (supervisor, error) => forgetLost(supervisor, error),
    onCommitted: (supervisor, step) => {
      if (step.checkpointSeq !== null) pruner.saved(supervisor.id);
      registry.trigger.upsert(registryEntry(supervisor));
      for (const hook of hooks.onCommitted) hook(supervisor, step);
      dispatchToDriver(supervisor, step);
    },
  };

  function forgetLost(supervisor: DurableSupervisor, error: OwnershipLostError | null): void {
    if (supervisors.get(supervisor.id) !== supervisor) return;
    supervisors.delete(supervisor.id);
    heldDrivers.delete(supervisor.id);
    unstartedMessages.delete(supervisor.id);
    registry.trigger.remove({ id: supervisor.id });
    logger.info({ supervisorId: supervisor.id, owner: error?.current.owner ?? null }, 'supervisor handed to another daemon; no longer running here');
  }

  function registryEntry(supervisor: DurableSupervisor): RegistryEntry {
    const { context } = supervisor.snapshot;
    return {
      id: supervisor.id,
      name: context.name,
      state: supervisor.state,
      phase: context.phase,
      activity: context.currentActivity,
      progress: context.progress,
      pendingQuestionCount: context.pendingQuestions.length,
      runningTaskCount: context.tasks.filter((task) => task.status === 'running').length,
      restorationCount: context.restorationCount,
      degraded: supervisor.degraded,
      updatedAt: now().toISOString(),
    };
  }

  // A driver this daemon lacks (a restored supervisor's) drives nothing here: another driver would act in its place.
  function driverFor(name: string | null | undefined): AgentDriver {
    return drivers.get(name ?? defaultDriver) ?? manualDriver;
  }

  /** A restored supervisor keeps its driver's name, so its row still names it and a daemon that has it drives it again. */
  function restoredDriver(supervisorId: string, name: string): string {
    if (!drivers.has(name)) {
      logger.warn(
        { supervisorId, driver: name, drivers: [...drivers.keys()] },
        `agent driver ${name} is not configured in this daemon: the supervisor runs without a driver here (events sent to it still apply) and keeps driver ${name}, so a daemon that has it drives it again when it restores it`,
      );
    }
    return name;
  }

  // Drivers hear only committed facts, after the step that caused them settled, so they may send events themselves.
  function dispatchToDriver(supervisor: DurableSupervisor, step: CommittedStep): void {
    const driver = driverFor(supervisor.driverName);
    const handle = handleFor(supervisor);
    const calls: Array<() => void | Promise<void>> = [];
    if (step.event?.type === 'START') {
      if (driver.onStarted && !forkBegins.has(supervisor.id)) calls.push(() => driver.onStarted?.(handle));
      const held = unstartedMessages.get(supervisor.id) ?? [];
      unstartedMessages.delete(supervisor.id);
      for (const message of held) calls.push(() => driver.onMessage?.(handle, message));
    }
    // A restoration's RESUME (its callbacks are held) is told by onRestored, which runs after it, and a fork's by onForked.
    if (step.event?.type === 'RESUME' && driver.onResumed && !heldDrivers.has(supervisor.id) && !forkBegins.has(supervisor.id)) {
      const resume = resumedSupervisor(supervisor.id, step);
      calls.push(async () => driver.onResumed?.(handle, await resume()));
    }
    const restored = step.event?.type === 'RESTORED' ? step.event : null;
    // A held supervisor (made with start: false) is restored but not begun: its driver hears nothing until it runs.
    if (restored && driver.onRestored && !isHeld(String(step.after.value), step.after.context)) calls.push(() => driver.onRestored?.(handle, { source: restored.source, contextMessage: restored.contextMessage }));
    for (const effect of step.effects) {
      if (effect.type === 'answerReceived' && driver.onQuestionAnswered) calls.push(() => driver.onQuestionAnswered?.(handle, effect.params));
      if (effect.type === 'messageReceived' && driver.onMessage) {
        const { from, messageId, body, sentAt } = effect.params;
        // Not started yet: the driver hears it after START, not while the supervisor cannot act on it.
        const message = { from, messageId, body, sentAt };
        if (hasNotStarted(String(step.after.value), step.after.context)) unstartedMessages.set(supervisor.id, [...(unstartedMessages.get(supervisor.id) ?? []), message]);
        else calls.push(() => driver.onMessage?.(handle, message));
      }
      if (effect.type === 'taskFinished' && driver.onTaskFinished) {
        const { taskId, status, task } = effect.params;
        calls.push(() => driver.onTaskFinished?.(handle, { taskId, status, description: task.description, result: task.result, error: task.error }));
      }
    }
    if (calls.length === 0) return;
    const run = () => {
      void (async () => {
        for (const call of calls) {
          if (supervisor.stopped || stopping) return;
          try {
            await call();
          } catch (error) {
            logger.warn({ supervisorId: supervisor.id, driver: driver.name, err: errorText(error) }, 'agent driver failed');
          }
        }
      })();
    };
    const held = heldDrivers.get(supervisor.id);
    if (held) held.push(run);
    else setImmediate(run);
  }

  /**
   * What a committed RESUME tells the driver. What arrived while it was interrupted is read from the stored conversation,
   * from the seq its INTERRUPT recorded in the snapshot up to the RESUME (which appends nothing), so it does not depend
   * on this daemon having seen the interruption.
   */
  function resumedSupervisor(supervisorId: string, step: CommittedStep): () => Promise<ResumedSupervisor> {
    const { context } = step.before;
    const since = context.interruptedAtSeq ?? null;
    const until = context.conversationLength;
    const info = { interruptedFrom: context.interruptedFrom, reason: context.errorMessage };
    return async () => ({
      ...info,
      arrived: since === null || since >= until ? [] : await getConversation(database.db, supervisorId, { fromSeq: since, limit: until - since }),
    });
  }

  function handleFor(supervisor: DurableSupervisor): SupervisorHandle {
    return {
      id: supervisor.id,
      state: () => supervisor.state,
      context: () => supervisor.snapshot.context,
      conversation: (conversationOptions) => getConversation(database.db, supervisor.id, conversationOptions),
      send: async (command) => {
        await runtime.send(supervisor.id, command);
      },
    };
  }

  function place(supervisor: DurableSupervisor): DurableSupervisor {
    supervisors.set(supervisor.id, supervisor);
    registry.trigger.upsert(registryEntry(supervisor));
    return supervisor;
  }

  async function stopLocal(id: string): Promise<void> {
    const supervisor = supervisors.get(id);
    if (!supervisor) return;
    await supervisor.stop();
    if (supervisors.get(id) === supervisor) {
      supervisors.delete(id);
      registry.trigger.remove({ id });
    }
  }

  /**
   * A creation whose outcome was unknown, retried with its id. Committed after all: run the stored row here (it is this
   * daemon's, epoch 1) and start it, rather than answer "already taken" for a supervisor that runs nowhere. Not stored:
   * null, and the retry creates it.
   */
  async function takeUpUnsettledCreation(id: string, begin: Begin | null): Promise<DurableSupervisor | null> {
    if (!(await getSupervisorState(database.db, id))) {
      unsettledCreations.delete(id);
      return null;
    }
    if (!host.running(id)) await restorer.resync(id, 1);
    const supervisor = host.running(id);
    // Not loaded (the database went away again, or another daemon has it): answered as taken; a later retry tries again.
    if (!supervisor) return null;
    unsettledCreations.delete(id);
    // The first steps of the creation the retry makes: they run once, whichever attempt committed.
    await beginCommitted(supervisor, begin, true);
    supervisor.startHeartbeat();
    logger.info({ supervisorId: id }, 'a creation whose outcome was unknown had committed: running it here');
    return supervisor;
  }

  /**
   * A fork's first steps: RESUME one made from an interrupted checkpoint, then START one that is (or came back)
   * initializing, and tell its driver once, with onForked (a fork's START does not also call onStarted). `notice` is
   * what the fork was made with; null when an earlier attempt's creation is taken up, whose lineage and notice are read
   * back (only for a driver that listens).
   */
  async function beginFork(created: DurableSupervisor, notice: { sourceId: string; checkpointSeq: number; contextMessage: string } | null): Promise<void> {
    let started = false;
    forkBegins.add(created.id);
    try {
      if (created.state === 'interrupted') await created.resume({ start: true });
      if (created.state === 'initializing') started = (await created.start()) !== null;
    } finally {
      forkBegins.delete(created.id);
    }
    const driver = driverFor(created.driverName);
    if (!driver.onForked) return;
    const told = notice ?? (await storedForkNotice(created));
    if (!told) return;
    const handle = handleFor(created);
    const fork = { ...told, started };
    setImmediate(() => {
      if (created.stopped || stopping) return;
      void Promise.resolve()
        .then(() => driver.onForked?.(handle, fork))
        .catch((error: unknown) => logger.warn({ supervisorId: created.id, driver: driver.name, err: errorText(error) }, 'agent driver failed'));
    });
  }

  /** A stored fork's origin and the notice at the end of the conversation it was made with; null when it cannot be read. */
  async function storedForkNotice(fork: DurableSupervisor): Promise<{ sourceId: string; checkpointSeq: number; contextMessage: string } | null> {
    try {
      const origin = (await getForkLineage(database.db, fork.id, { limit: 0 })).forkedFrom;
      if (!origin) return null;
      // The notice is the last system entry it was made with; a RESUME and a START may follow it.
      const recent = await getConversation(database.db, fork.id, { fromSeq: Math.max(0, fork.snapshot.context.conversationLength - 5), limit: 5 });
      const contextMessage = recent.filter((entry) => entry.role === 'system' && entry.content.startsWith('[fork]')).at(-1)?.content ?? '';
      return { sourceId: origin.sourceId, checkpointSeq: origin.checkpointSeq, contextMessage };
    } catch (error) {
      logger.warn({ supervisorId: fork.id, err: errorText(error) }, "could not read the fork's origin back: its driver is not told it was forked");
      return null;
    }
  }

  /** The id of a stored supervisor, as stored (lowercase), for a read of its rows; SupervisorNotFoundError otherwise (a corrupt row is stored). */
  async function storedId(id: string): Promise<string> {
    const key = id.toLowerCase();
    if (!isUuid(key) || (await listSupervisorOwners(database.db, { ids: [key] })).length === 0) throw new SupervisorNotFoundError(id);
    return key;
  }

  /** A new supervisor's id: the caller's (a UUID, stored lowercase) or a fresh one. */
  function checkedNewId(given: string | undefined): string {
    const id = (given ?? randomUUID()).toLowerCase();
    if (!isUuid(id)) throw new InvalidSupervisorDataError(given ?? id, 'id', 'must be a UUID');
    return id;
  }

  function checkDriver(id: string, driver: string | undefined): void {
    if (driver === undefined || drivers.has(driver)) return;
    const known = [...drivers.keys()];
    // The LLM driver exists only where its settings are given: say which ones, not just "unknown".
    if (driver === OPENAI_DRIVER_NAME) {
      throw new UnknownDriverError(
        id,
        driver,
        known,
        'set SUPERVISOR_RUNTIME_LLM_BASE_URL and SUPERVISOR_RUNTIME_LLM_MODEL ' +
          '(or --llm-base-url and --llm-model; the key, if the server needs one, in SUPERVISOR_RUNTIME_LLM_API_KEY) and restart the daemon; in a library, pass createOpenAiDriver({ baseUrl, model }) in the runtime\'s drivers',
      );
    }
    throw new UnknownDriverError(id, driver, known);
  }

  /**
   * Create a supervisor owned here (epoch 1) from its first snapshot, commit it, run it, then `begin` it (START, for a
   * spawn). A caller-chosen id is its idempotency key: taken, it is refused with ID_TAKEN; a creation whose outcome was
   * unknown is taken up by its retry.
   */
  async function createOwned(input: {
    id: string;
    kind: CreationKind;
    callerChoseId: boolean;
    initial: SupervisorSnapshot;
    driver: string;
    creation?: { effects?: SupervisorEffect[]; reason?: string; forkedFrom?: ForkOrigin };
    begin: Begin | null;
  }): Promise<{ supervisor: DurableSupervisor; takenUp: boolean }> {
    const { id } = input;
    // Only a retry of the same kind of creation takes it up (a spawn never answers with a fork, nor the other way).
    if (input.callerChoseId && unsettledCreations.get(id) === input.kind) {
      const earlier = await takeUpUnsettledCreation(id, input.begin);
      if (earlier) return { supervisor: earlier, takenUp: true };
    }
    // Only a caller-chosen id can be taken; a fresh UUID skips the read (the step fence would refuse an overwrite anyway).
    if (supervisors.has(id) || (input.callerChoseId && (await getSupervisorState(database.db, id)))) {
      throw new InvalidSupervisorDataError(id, 'id', ID_TAKEN);
    }
    let created: DurableSupervisor;
    creating.add(id);
    try {
      created = await DurableSupervisor.create(deps, input.initial, input.driver, { step: 1, epoch: 1 }, input.creation);
    } catch (error) {
      creating.delete(id);
      // Two creations racing for one caller-chosen id: the loser's insert finds the winner's row.
      if (error instanceof StaleWriteError || error instanceof OwnershipLostError) throw new InvalidSupervisorDataError(id, 'id', ID_TAKEN);
      // The caller hears "outcome unknown" and retries with its id: that retry takes up the row if it committed.
      if (input.callerChoseId && (error instanceof DatabaseUnavailableError || error instanceof SaveFailedError) && error.outcome === 'unknown') unsettledCreations.set(id, input.kind);
      throw error;
    }
    const supervisor = place(created);
    creating.delete(id);
    // The creation committed: from here a database outage leaves the supervisor interrupted and starting by itself
    // once the database is back, never a creation reported as not written.
    await beginCommitted(supervisor, input.begin, false);
    supervisor.startHeartbeat();
    return { supervisor, takenUp: false };
  }

  /** After the creation committed nothing may report it unwritten: a failure of its first steps is logged, not thrown. */
  async function beginCommitted(supervisor: DurableSupervisor, begin: Begin | null, takenUp: boolean): Promise<void> {
    if (!begin) return;
    try {
      await begin(supervisor, takenUp);
    } catch (error) {
      logger.warn({ supervisorId: supervisor.id, state: supervisor.state, err: errorText(error) }, 'supervisor created; its first step failed (it is stored, in the state shown)');
    }
  }

  /**
   * Not running here: say why, in the words a caller can act on (finished, owned by another daemon, or not restored).
   * `eventType` is what the caller sent, named in the refusal as when the running machine refuses it.
   */
  async function requireRunning(id: string, eventType: SupervisorEvent['type']): Promise<DurableSupervisor> {
    if (stopping) throw new RuntimeStoppedError();
    const supervisor = supervisors.get(id);
    if (supervisor && !supervisor.stopped) return supervisor;
    const stored = await getSupervisorState(database.db, id);
    if (!stored) throw new SupervisorNotFoundError(id);
    if (isTerminalState(stored.state)) {
      throw new EventRefusedError(id, eventType, `supervisor is ${stored.state} and accepts no more events`, stored.state);
    }
    const owner = await getOwner(database.db, id);
    if (owner?.owner && owner.owner !== daemonId && owner.ownerLive) throw new SupervisorOwnedElsewhereError(id, owner.owner, owner.ownerUrl);
    throw new SupervisorNotRunningError(id, stored.state);
  }

  /** A caller-chosen task id must fit a subject token and must not belong to another supervisor's task. */
  async function spawnWithTaskId(id: string, taskId: string, command: SupervisorCommand): Promise<CommittedStep> {
    if (!isCallerId(taskId)) throw new InvalidSupervisorDataError(id, 'taskId', 'must be 1–128 letters, digits, "_" or "-" (it becomes a NATS subject token)');
    const existing = await getTask(database.db, taskId);
    if (existing && existing.supervisorId !== id) {
      throw new EventRefusedError(id, 'SPAWN_TASK', `task id ${taskId} is already used by supervisor ${existing.supervisorId}`, supervisors.get(id)?.state ?? 'unknown');
    }
    // A finished task has left the snapshot, so the machine cannot tell its id was used: its row can.
    if (existing && (existing.status === 'completed' || existing.status === 'failed')) {
      throw new EventRefusedError(id, 'SPAWN_TASK', `task ${taskId} was already spawned (it is ${existing.status}); spawn with a new id`, supervisors.get(id)?.state ?? 'unknown');
    }
    await restoring.get(id)?.done;
    const event = toEvent(command);
    const supervisor = await requireRunning(id, event.type);
    return supervisor.send(event);
  }

  /** Why a caller-chosen question id cannot be asked again, from its supervisor_questions row (settled questions have left the snapshot). */
  function questionIdTaken(id: string, questionId: string, earlier: QuestionRecord): EventRefusedError {
    const what = earlier.answer !== null ? `was already answered: ${JSON.stringify(earlier.answer)}` : earlier.withdrawnAt ? `was withdrawn at ${earlier.withdrawnAt}` : 'is already pending';
    return new EventRefusedError(id, 'ASK_QUESTION', `question ${questionId} ${what}; ask with a new id`, supervisors.get(id)?.state ?? 'unknown');
  }

  /** An ASK_QUESTION naming its id, from any route: an id already asked (answered, withdrawn or pending) is refused, so the first answer keeps winning. */
  function askWithQuestionId(id: string, questionId: string, command: SupervisorCommand): Promise<CommittedStep> {
    if (!isCallerId(questionId)) return Promise.reject(invalidQuestionId(id));
    // Read in the event's turn: an ASK and its ANSWER sent together still apply in the order sent.
    return enqueue(id, toEvent(command), async () => {
      const earlier = await getQuestion(database.db, id, questionId);
      if (earlier) throw questionIdTaken(id, questionId, earlier);
    });
  }

  /**
   * A SEND_MESSAGE from any route. The receiver must exist and not be finished (read now; one that finishes before the
   * message arrives refuses it in its inbox). A caller's message id already used is a replay when it is the same message
   * (same receiver and body), refused otherwise; checked in the step's own turn, like an ask's question id.
   */
  async function sendMessageStep(
    from: string,
    command: Extract<SupervisorCommand, { type: 'SEND_MESSAGE' }>,
    options: { replay: boolean },
  ): Promise<{ messageId: string; step: CommittedStep | null }> {
    const to = typeof command.to === 'string' ? command.to.toLowerCase() : '';
    if (!isUuid(to)) throw new InvalidSupervisorDataError(from, 'to', 'must be the UUID of the receiving supervisor');
    if (command.messageId !== undefined && !isCallerId(command.messageId)) {
      throw new InvalidSupervisorDataError(from, 'messageId', 'must be 1–128 letters, digits, "_" or "-" (it is the message\'s idempotency key)');
    }
    if (to === from.toLowerCase()) throw new InvalidSupervisorDataError(from, 'to', 'names the sender itself: a supervisor does not send messages to itself');
    // A retry of a message that was sent is answered as sent, whatever became of the receiver since (it may have
    // finished after taking it in); the check in the step's turn below covers a retry racing its original.
    const sameMessage = (earlier: MessageRecord) => earlier.peerId === to && earlier.body === command.body;
    if (options.replay && command.messageId !== undefined) {
      const earlier = await getMessage(database.db, from, { direction: 'sent', messageId: command.messageId });
      if (earlier && sameMessage(earlier)) return { messageId: command.messageId, step: null };
    }
    const receiver = await listSupervisorOwners(database.db, { ids: [to] });
    if (receiver.length === 0) throw new InvalidSupervisorDataError(from, 'to', `names no supervisor (${to} is not stored)`);
    const state = receiver[0]?.state;
    if (state === 'completed' || state === 'failed') throw new InvalidSupervisorDataError(from, 'to', `names a supervisor that is ${state} and takes no more messages`);
    const event = toEvent({ ...command, to }) as Extract<SupervisorEvent, { type: 'SEND_MESSAGE' }>;
    const replay = new MessageReplayed();
    try {
      const step = await enqueue(from, event, command.messageId === undefined ? undefined : async () => {
        const earlier = await getMessage(database.db, from, { direction: 'sent', messageId: event.messageId });
        if (!earlier) return;
        if (options.replay && sameMessage(earlier)) throw replay;
        const what = sameMessage(earlier) ? 'this message' : `to ${earlier.peerId}: ${JSON.stringify(earlier.body.slice(0, 80))}`;
        throw new EventRefusedError(from, 'SEND_MESSAGE', `message ${event.messageId} was already sent (${what}); send with a new id`, supervisors.get(from)?.state ?? 'unknown');
      });
      return { messageId: event.messageId, step };
    } catch (error) {
      if (error === replay) return { messageId: event.messageId, step: null };
      throw error;
    }
  }

  /** The owner's side of a message: taken in once per sender and id (checked in the step's own turn). */
  function receiveMessage(id: string, message: { from: string; messageId: string; body: string; sentAt: string }): Promise<CommittedStep> {
    const from = message.from.toLowerCase();
    return enqueue(id, { type: 'RECEIVE_MESSAGE', from, messageId: message.messageId, body: message.body, sentAt: message.sentAt, at: now().toISOString() }, async () => {
      if (await getMessage(database.db, id, { direction: 'received', from, messageId: message.messageId })) throw new MessageAlreadyReceivedError(id, from, message.messageId);
    });
  }

  /** Enqueue synchronously when the supervisor runs here: a send made before shutdown() is a queued save it waits for. */
  function enqueue(id: string, event: SupervisorEvent, check?: () => Promise<void>): Promise<CommittedStep> {
    const restoration = restoring.get(id);
    if (restoration && !stopping) return restoration.done.then(() => enqueue(id, event, check));
    const supervisor = stopping ? undefined : supervisors.get(id);
    if (supervisor && !supervisor.stopped) return supervisor.send(event, check);
    return requireRunning(id, event.type).then((found) => found.send(event, check));
  }

  function toEvent(command: SupervisorCommand): SupervisorEvent {
    const at = command.at ?? now().toISOString();
    if (command.type === 'ASK_QUESTION') return { ...command, questionId: command.questionId ?? randomUUID(), at };
    if (command.type === 'SPAWN_TASK') return { ...command, taskId: command.taskId ?? randomUUID(), at };
    if (command.type === 'SEND_MESSAGE') return { ...command, to: command.to.toLowerCase(), messageId: command.messageId ?? randomUUID(), at };
    return { ...command, at } as SupervisorEvent;
  }

  const leases = createLeaseKeeper(
    {
      database,
      logger,
      daemonId,
      held: () => [...supervisors.values()].filter((supervisor) => !supervisor.stopped).map((supervisor) => ({ supervisorId: supervisor.id, epoch: supervisor.epoch })),
      busy: (supervisorId) => creating.has(supervisorId) || restoring.has(supervisorId) || restorer.inFlight(supervisorId),
      dropLost: async (ids) => {
        for (const id of ids) {
          const supervisor = supervisors.get(id);
          if (!supervisor) continue;
          await supervisor.stop();
          forgetLost(supervisor, null);
        }
      },
      restoreClaimed: async (claims) => {
        await restorer.restoreClaimed(claims, emptyRestoreAllSummary(), restoreConcurrency);
        inbox?.wake();
      },
      retryStranded: () => restorer.retryStranded(),
    },
    { ...DEFAULT_LEASE_SETTINGS, url: null, ...options.leases },
  );

  const host: RuntimeHost = {
    database,
    transport: options.transport,
    logger,
    subjectPrefix,
    daemonId,
    hooks,
    registry,
    inspectObserver: inspector.observer,
    now,
    ready: async () => {
      if (stopping) throw new RuntimeStoppedError();
      await leases.join();
    },
    running: (id) => {
      const supervisor = supervisors.get(id);
      return supervisor && !supervisor.stopped ? supervisor : undefined;
    },
    restoring: (id) => restoring.has(id),
    adopt: (snapshot, placement: Placement, driverName) =>
      place(DurableSupervisor.restore(deps, snapshot, placement.step, restoredDriver(snapshot.context.supervisorId, driverName), placement.epoch, placement.checkpointSeq)),
    createFresh: async (initial, driverName, placement) =>
      place(await DurableSupervisor.create(deps, initial, restoredDriver(initial.context.supervisorId, driverName), placement)),
    stopLocal,
    holdDriver: (id) => {
      if (!heldDrivers.has(id)) heldDrivers.set(id, []);
      // What this copy held is the restoration's to read back (holdUnstartedMessages), or was heard already.
      unstartedMessages.delete(id);
      if (!restoring.has(id)) {
        let resolve = () => {};
        const done = new Promise<void>((settle) => (resolve = settle));
        restoring.set(id, { done, resolve });
      }
    },
    holdUnstartedMessages: async (id, driverName) => {
      if (!driverFor(driverName).onMessage) return;
      const received = await listMessages(database.db, id, { direction: 'received', limit: MAX_UNSTARTED_MESSAGES });
      if (received.length === 0) return;
      if (received.length === MAX_UNSTARTED_MESSAGES) {
        logger.warn({ supervisorId: id, held: MAX_UNSTARTED_MESSAGES }, 'a supervisor that never started took in more messages than its driver is told after START; the older ones are in its conversation only');
      }
      unstartedMessages.set(
        id,
        received.reverse().map((message) => ({ from: message.peerId, messageId: message.messageId, body: message.body, sentAt: message.sentAt })),
      );
    },
    releaseDriver: (id, releaseOptions = {}) => {
      const held = heldDrivers.get(id);
      heldDrivers.delete(id);
      restoring.get(id)?.resolve();
      restoring.delete(id);
      if (!held || releaseOptions.discard) return;
      // In commit order, as if they had been dispatched when their steps committed.
      for (const run of held) setImmediate(run);
    },
  };

  const restorer = createRestorer(host);

  function ensureInbox(inboxOptions: InboxApplierOptions | undefined): Promise<OwnerInbox> {
    // Once shutdown began nothing new starts: a start() it overlapped would otherwise leave the applier running after it.
    if (stopping) return Promise.reject(new RuntimeStoppedError());
    inboxStarting ??= startOwnerInbox(
      host,
      {
        answer: (id, questionId, answer) => runtime.answerQuestion(id, questionId, answer),
        taskEvent: (taskId, event) => runtime.reportTaskEvent(taskId, event),
        message: (id, message) => receiveMessage(id, message),
      },
      { answers: emptyInboundCounts(), taskEvents: emptyInboundCounts(), messages: emptyInboundCounts() },
      inboxOptions,
    ).then(
      (started) => (inbox = started),
      (error: unknown) => {
        inboxStarting = null;
        throw error;
      },
    );
    return inboxStarting;
  }

  async function listenForReleases(): Promise<void> {
    if (unlistenLeases) return;
    // A daemon that shuts down says so: the others claim its supervisors now instead of at their next round.
    unlistenLeases = await database.listen(database.notificationChannel('leases'), (payload) => {
      if (payload.startsWith('released ') && payload !== `released ${daemonId}`) leases.wake();
    });
  }

  const metrics = createRuntimeMetrics({ database, hooks, daemonId, running: () => runtime.list(), stats: () => runtime.stats() });

  const runtime: SupervisorRuntime = {
    daemonId,
    subjectPrefix,
    registry,
    transportKind: options.transport?.kind ?? 'none',

    async start(startOptions = {}) {
      if (stopping) throw new RuntimeStoppedError();
      restoreConcurrency = startOptions.restoreConcurrency ?? restoreConcurrency;
      await host.ready();
      await listenForReleases();
      const summary = startOptions.restore === false ? emptyRestoreAllSummary() : await runtime.restoreAll({ concurrency: restoreConcurrency });
      // A shutdown that began while this restored: start nothing more (it already stopped what it found).
      if (stopping) throw new RuntimeStoppedError();
      // Messaging after restoration: the relay publishes the re-deliveries it committed, and answers or task events kept
      // by JetStream while the daemon was down reach supervisors that are running again.
      const messagingOptions = startOptions.messaging ?? (options.transport ? { embeddedWorker: false } : false);
      // The inbox applier needs only the database: what other daemons record for this one's supervisors applies even
      // while its own transport is down (the daemon then starts messaging later, which reuses this applier).
      await ensureInbox(startOptions.inbox ?? (messagingOptions === false ? undefined : messagingOptions.inbox));
      if (messagingOptions !== false && !messaging) await runtime.startMessaging(messagingOptions);
      if (stopping) throw new RuntimeStoppedError();
      leases.startRounds();
      return summary;
    },

    async startMessaging(messagingOptions) {
      if (messaging) return messaging;
      await host.ready();
      const owned = await ensureInbox(messagingOptions.inbox);
      if (stopping) throw new RuntimeStoppedError();
      messaging ??= await startMessaging(host, owned, messagingOptions);
      return messaging;
    },

    advertise: (url) => leases.advertise(url),

    async restoreAll(restoreOptions = {}) {
      await host.ready();
      const started = performance.now();
      const summary = emptyRestoreAllSummary();
      const concurrency = restoreOptions.concurrency ?? restoreConcurrency;
      await leases.claimAtStartup(async (claims) => {
        await restorer.restoreClaimed(claims, summary, concurrency);
        inbox?.wake();
      });
      summary.durationMs = Math.round(performance.now() - started);
      lastSummary = summary;
      logger.info(
        { total: summary.total, restored: summary.restored, fromCheckpoint: summary.fromCheckpoint, startedFresh: summary.startedFresh, failed: summary.failed.length, durationMs: summary.durationMs },
        'restore-all finished',
      );
      return summary;
    },

    async spawn(input) {
      if (stopping) throw new RuntimeStoppedError();
      // Ids are stored as Postgres writes a uuid (lowercase): an uppercase one is the same supervisor, in that form.
      const id = checkedNewId(input.id);
      if (typeof input.name !== 'string' || input.name.trim() === '') throw new InvalidSupervisorDataError(id, 'name', 'must be a non-empty string');
      checkDriver(id, input.driver);
      await host.ready();
      const [initial] = initialTransition(supervisorMachine, {
        supervisorId: id,
        name: input.name.trim(),
        ...(input.phase ? { phase: input.phase } : {}),
        createdAt: now().toISOString(),
        // Recorded in the creation snapshot, so a restore leaves it unstarted too.
        ...(input.start === false ? { held: true } : {}),
      });
      const { supervisor } = await createOwned({
        id,
        kind: 'spawn',
        callerChoseId: input.id !== undefined,
        initial,
        driver: input.driver ?? defaultDriver,
        begin: input.start !== false ? async (created) => void (created.state === 'initializing' ? await created.start() : null) : null,
      });
      logger.info({ supervisorId: id, name: input.name, driver: supervisor.driverName }, 'supervisor spawned');
      return supervisor;
    },

    async fork(sourceId, input = {}) {
      if (stopping) throw new RuntimeStoppedError();
      const source = sourceId.toLowerCase();
      if (!isUuid(source)) throw new SupervisorNotFoundError(sourceId);
      const id = checkedNewId(input.id);
      if (input.name !== undefined && (typeof input.name !== 'string' || input.name.trim() === '')) throw new InvalidSupervisorDataError(id, 'name', 'must be a non-empty string');
      checkDriver(id, input.driver);
      if (input.checkpointSeq !== undefined && (!Number.isSafeInteger(input.checkpointSeq) || input.checkpointSeq < 1)) {
        throw new InvalidSupervisorDataError(id, 'checkpointSeq', 'must be a positive whole number (GET /supervisors/:id/checkpoints lists them)');
      }
      await host.ready();
      // The raw row: a source whose stored row is corrupt can still be forked from a good checkpoint.
      const raw = await getSupervisorStateForRestoration(database.db, source);
      if (!raw) throw new SupervisorNotFoundError(source);
      const seq = input.checkpointSeq ?? raw.checkpointSeq;
      const checkpoint = await getCheckpoint(database.db, source, seq);
      if (!checkpoint) throw new CheckpointNotFoundError(source, seq);
      if (isTerminalState(checkpoint.state)) {
        throw new ForkRefusedError(source, seq, `the supervisor was ${checkpoint.state} at that checkpoint, so a fork of it could do nothing`);
      }
      // The same guards and migrations a restore runs. Its running tasks are spawned again under new ids, so whether
      // the source's task rows still exist does not matter to the fork: each counts as there.
      const candidate = candidateFromCheckpoint(source, checkpoint);
      const outcome = validateStoredState(candidate, new Map(candidate.spawnedTaskIds.map((taskId) => [taskId, 'running'])), { fallbackAction: 'restore_from_checkpoint' });
      if (!outcome.snapshot) throw new ForkRefusedError(source, seq, 'the checkpoint does not pass validation', outcome.result.errors);
      if (isTerminalState(outcome.snapshot.value as SupervisorState)) {
        throw new ForkRefusedError(source, seq, `the checkpoint's snapshot is ${String(outcome.snapshot.value)}, so a fork of it could do nothing`);
      }
      const plan = planFork({
        sourceId: source,
        checkpoint,
        snapshot: outcome.snapshot,
        id,
        name: input.name?.trim() ?? `${outcome.snapshot.context.name} (fork)`,
        at: now().toISOString(),
        newTaskId: () => randomUUID(),
      });
      const sourceDriver = raw.driver !== null && drivers.has(raw.driver) ? raw.driver : defaultDriver;
      const run = input.start !== false;
      // Held or not as this fork is asked, whatever its checkpoint was: a restore leaves a held fork as it was made. Only
      // one that has a first step to hold back (RESUME, START) is held; any other fork runs as made.
      const { held: sourceHeld, ...unheld } = plan.snapshot.context;
      const holds = !run && (plan.snapshot.value === 'initializing' || plan.snapshot.value === 'interrupted');
      const initial = holds || sourceHeld !== undefined ? supervisorMachine.resolveState({ value: plan.snapshot.value as string, context: holds ? { ...unheld, held: true } : unheld }) : plan.snapshot;
      const { supervisor, takenUp } = await createOwned({
        id,
        kind: 'fork',
        callerChoseId: input.id !== undefined,
        initial,
        driver: input.driver ?? sourceDriver,
        creation: { effects: plan.effects, reason: 'forked', forkedFrom: plan.forkedFrom },
        begin: run ? (created, takenUp) => beginFork(created, takenUp ? null : { sourceId: source, checkpointSeq: seq, contextMessage: plan.contextMessage }) : null,
      });
      if (takenUp) {
        // An earlier attempt committed (its reply was lost): answer with what it stored, never with this retry's plan.
        const origin = (await getForkLineage(database.db, id, { limit: 0 })).forkedFrom;
        if (!origin || origin.sourceId !== source || (input.checkpointSeq !== undefined && origin.checkpointSeq !== input.checkpointSeq)) {
          throw new InvalidSupervisorDataError(id, 'id', ID_TAKEN);
        }
        return { supervisor, forkedFrom: { supervisorId: origin.sourceId, checkpointSeq: origin.checkpointSeq }, tasks: origin.tasks, questionIds: supervisor.snapshot.context.pendingQuestions.map((question) => question.id) };
      }
      logger.info({ supervisorId: id, source, checkpointSeq: seq, tasks: plan.tasks.length, questions: plan.questionIds.length }, 'supervisor forked');
      return { supervisor, forkedFrom: { supervisorId: source, checkpointSeq: seq }, tasks: plan.tasks, questionIds: plan.questionIds };
    },

    async sendMessage(from, message) {
      const sent = await sendMessageStep(from.toLowerCase(), { type: 'SEND_MESSAGE', to: message.to, body: message.body, ...(message.messageId !== undefined ? { messageId: message.messageId } : {}) }, { replay: true });
      return sent.step === null ? { messageId: sent.messageId, replayed: true } : { messageId: sent.messageId };
    },

    messages: async (id, options) => listMessages(database.db, await storedId(id), options),

    lineage: async (id, options) => getForkLineage(database.db, await storedId(id), options),

    get: (id) => (restoring.has(id) ? undefined : host.running(id)),

    list: () => [...supervisors.values()].filter((supervisor) => !supervisor.stopped && !restoring.has(supervisor.id)),

    send(id, command) {
      if (command.type === 'SPAWN_TASK' && command.taskId !== undefined) return spawnWithTaskId(id, command.taskId, command);
      if (command.type === 'ASK_QUESTION' && command.questionId !== undefined) return askWithQuestionId(id, command.questionId, command);
      // Through send() a used message id is refused like a used question id; sendMessage() answers a retry as a replay.
      if (command.type === 'SEND_MESSAGE') return sendMessageStep(id, command, { replay: false }).then((sent) => sent.step as CommittedStep);
      return enqueue(id, toEvent(command));
    },

    async askQuestion(id, question) {
      const questionId = question.questionId ?? randomUUID();
      const ask = {
        type: 'ASK_QUESTION' as const,
        questionId,
        question: question.question,
        ...(question.choices ? { choices: question.choices } : {}),
        ...(question.context ? { context: question.context } : {}),
      };
      if (question.questionId !== undefined && !isCallerId(question.questionId)) throw invalidQuestionId(id);
      // A fresh UUID cannot have been asked, so it skips the read of supervisor_questions.
      if (question.questionId === undefined) {
        await enqueue(id, toEvent(ask));
        return { questionId };
      }
      // Answered questions have left the snapshot: a reused id is caught here, from supervisor_questions.
      // The same question under the same id is a retry of an ask whose outcome the caller did not learn.
      const asked = async (): Promise<boolean> => {
        const earlier = await getQuestion(database.db, id, questionId);
        if (earlier === null) return false;
        const same =
          earlier.question === question.question &&
          JSON.stringify(earlier.choices ?? null) === JSON.stringify(question.choices ?? null) &&
          // An empty context is not stored (the row says null): "" and no context are the same ask.
          (earlier.context || null) === (question.context || null);
        if (same) return true;
        throw questionIdTaken(id, questionId, earlier);
      };
      // Checked in the event's own turn, after every step queued before it: a retry that read the table before the
      // original ask committed (and was answered) would otherwise ask the answered question again.
      const replay = new AskReplayed();
      try {
        await enqueue(id, toEvent(ask), async () => {
          if (await asked()) throw replay;
        });
      } catch (error) {
        if (error === replay) return { questionId, replayed: true };
        // Two retries racing on different daemons' views: the machine refused the second; the row says it is the same ask.
        if (error instanceof EventRefusedError && (await asked())) return { questionId, replayed: true };
        throw error;
      }
      return { questionId };
    },

    async answerQuestion(id, questionId, answer) {
      // Answered questions have left the snapshot; supervisor_questions keeps the first answer, which wins.
      const firstAnswer = async () => {
        const stored = await getQuestion(database.db, id, questionId);
        if (stored?.withdrawnAt) {
          const reason = stored.withdrawnReason ? ` (${stored.withdrawnReason})` : '';
          throw new EventRefusedError(id, 'ANSWER', `question ${questionId} was withdrawn at ${stored.withdrawnAt}${reason}: it no longer takes an answer`, supervisors.get(id)?.state ?? 'unknown');
        }
        return stored && stored.answer !== null && stored.answeredAt !== null ? { answer: stored.answer, answeredAt: stored.answeredAt } : null;
      };
      const supervisor = supervisors.get(id);
      if (supervisor && !supervisor.snapshot.context.pendingQuestions.some((pending) => pending.id === questionId)) {
        const first = await firstAnswer();
        if (first) throw new QuestionAlreadyAnsweredError(id, questionId, first.answer, first.answeredAt);
      }
      try {
        return await runtime.send(id, { type: 'ANSWER', questionId, answer });
      } catch (error) {
        // Two answers racing: the loser is refused inside the queue, after the winner committed.
        if (error instanceof EventRefusedError) {
          const winner = await firstAnswer();
          if (winner) throw new QuestionAlreadyAnsweredError(id, questionId, winner.answer, winner.answeredAt);
        }
        throw error;
      }
    },

    async withdrawQuestion(id, questionId, reason) {
      try {
        return await runtime.send(id, { type: 'WITHDRAW_QUESTION', questionId, ...(reason !== undefined ? { reason } : {}) });
      } catch (error) {
        if (!(error instanceof EventRefusedError)) throw error;
        // Settled questions have left the snapshot: say how this one was settled.
        const stored = await getQuestion(database.db, id, questionId);
        const how = stored?.answer != null ? `was already answered: ${JSON.stringify(stored.answer)}` : stored?.withdrawnAt ? `was already withdrawn at ${stored.withdrawnAt}` : null;
        if (how) throw new EventRefusedError(id, 'WITHDRAW_QUESTION', `question ${questionId} ${how}`, error.state);
        throw error;
      }
    },

    async spawnTask(id, task) {
      if (task.taskId !== undefined) {
        // The same task under the same id: a retry of a spawn whose outcome the caller did not learn.
        const spawned = (existing: TaskRecord | null) => existing !== null && existing.supervisorId === id && existing.description === task.description;
        if (spawned(await getTask(database.db, task.taskId))) return { taskId: task.taskId, replayed: true };
        try {
          await runtime.send(id, { type: 'SPAWN_TASK', taskId: task.taskId, description: task.description });
        } catch (error) {
          // Two retries racing: both passed the check above, the first committed, the machine refused the second.
          if (error instanceof EventRefusedError && spawned(await getTask(database.db, task.taskId))) return { taskId: task.taskId, replayed: true };
          throw error;
        }
        return { taskId: task.taskId };
      }
      // A fresh UUID cannot collide, so it skips the ownership lookup.
      const taskId = randomUUID();
      await enqueue(id, toEvent({ type: 'SPAWN_TASK', taskId, description: task.description }));
      return { taskId };
    },

    async reportTaskEvent(taskId, event) {
      const task = await getTask(database.db, taskId);
      if (!task) throw new TaskNotFoundError(taskId);
      // Finished tasks have left the snapshot: their row says how they ended.
      if (task.status === 'completed' || task.status === 'failed') {
        const running = supervisors.get(task.supervisorId);
        if (!running?.snapshot.context.tasks.some((open) => open.id === taskId)) {
          throw new EventRefusedError(task.supervisorId, 'TASK_EVENT', `task ${taskId} is not running (already ${task.status})`, running?.state ?? 'unknown');
        }
      }
      return runtime.send(task.supervisorId, {
        type: 'TASK_EVENT',
        taskId,
        kind: event.type,
        ...(event.progress !== undefined ? { progress: event.progress } : {}),
        ...(event.result !== undefined ? { result: event.result } : {}),
        ...(event.error !== undefined ? { error: event.error } : {}),
      });
    },

    async restore(id, source, restoreOptions) {
      if (stopping) throw new RuntimeStoppedError();
      const info = await restorer.restore(id, source, restoreOptions);
      inbox?.wake();
      return info;
    },

    resume: (id, restoreOptions) => runtime.restore(id, 'manual', restoreOptions),

    stop: stopLocal,

    async describe(id) {
      const stored = await getSupervisorState(database.db, id);
      if (!stored) throw new SupervisorNotFoundError(id);
      return stored;
    },

    listSupervisors: (listOptions) => listSupervisors(database.db, listOptions),

    async checkpoints(id, checkpointOptions) {
      const checkpoints = await listCheckpoints(database.db, id, checkpointOptions);
      // Every supervisor has its "created" checkpoint, so an empty list means an unknown id: describe raises the 404.
      if (checkpoints.length === 0) await runtime.describe(id);
      return checkpoints;
    },

    deadLetters: (deadLetterOptions) => listDeadLetters(database.db, deadLetterOptions),

    async questions(id, questionOptions) {
      await runtime.describe(id);
      return listQuestions(database.db, id, questionOptions);
    },

    async tasks(id) {
      await runtime.describe(id);
      const tasks = await listSupervisorTasks(database.db, id);
      return tasks.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    },

    async conversation(id, conversationOptions) {
      await runtime.describe(id);
      return getConversation(database.db, id, conversationOptions);
    },

    lastRestoreAll: () => lastSummary,
    check: (checkOptions) => checkStoredStates(database.db, checkOptions),

    pruneCheckpoints: () => pruner.prune(),

    daemons: () => listMemberships(database.db),

    metrics: () => metrics.scrape(),

    stats: () => ({
      leases: leases.stats(),
      running: supervisors.size,
      relay: messaging?.relay?.stats() ?? null,
      inbound: messaging?.consumers?.stats() ?? (inbox ? { answers: { ...inbox.counts.answers }, taskEvents: { ...inbox.counts.taskEvents }, messages: { ...inbox.counts.messages }, lastError: null } : null),
      worker: messaging?.worker?.stats() ?? null,
      taskWorkers: messaging?.taskWorkerWatch?.stats() ?? null,
      saves: saves.stats(),
      checkpoints: pruner.stats(),
    }),

    async health() {
      const databaseHealth = await database.health();
      const transport = options.transport ? await options.transport.health() : ({ ok: true, kind: 'none', detail: 'no transport configured' } as const);
      return { ok: databaseHealth.ok && transport.ok, database: databaseHealth, transport };
    },

    async shutdown(shutdownOptions = {}) {
      if (stopping) return;
      stopping = true;
      // No new claims; restores in flight finish; queued saves finish; only then do the relay, the transport and the
      // database go away. The leases are released after the last save, so another daemon takes over at once.
      await leases.stopClaiming();
      await restorer.settle();
      await Promise.all([...supervisors.values()].map((supervisor) => supervisor.stop()));
      pruner.stop();
      await pruner.prune().catch(() => 0);
      for (const hook of hooks.onShutdown) {
        try {
          await hook();
        } catch (error) {
          logger.warn({ err: errorText(error) }, 'shutdown hook failed');
        }
      }
      // After the consumers (a shutdown hook): nothing is recorded for this daemon to wake it any more.
      await inboxStarting?.catch(() => undefined);
      await inbox?.stop();
      await unlistenLeases?.().catch(() => undefined);
      if (leases.membership) {
        await leases.release();
        await sql`SELECT pg_notify(${database.notificationChannel('leases')}, ${`released ${daemonId}`})`
          .execute(database.db)
          .catch((error: unknown) => logger.warn({ err: errorText(error) }, 'could not tell other daemons about the release; they notice at their next round'));
      }
      inspector.stop();
      if (shutdownOptions.closeTransport !== false) await options.transport?.close().catch(() => undefined);
      if (shutdownOptions.closeDatabase !== false) await database.close();
    },
  };
  return runtime;
}

export type { CheckpointRecord, SupervisorDetailedState, SupervisorState };
