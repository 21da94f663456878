// The orchestrator runtime: spawns one durable actor per supervisor, finds them, routes events, tasks and answers
// to them, keeps the live registry, and shuts down in order. The only place machines meet persistence and transport.

import { randomUUID } from 'node:crypto';
import { initialTransition, type InspectionEvent, type Observer } from 'xstate';
import { EventRefusedError, errorText, InvalidSupervisorDataError, SupervisorNotFoundError } from '../domain/errors.js';
import type { RestorationInfo, RestorationSource } from '../domain/restoration.js';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import { supervisorMachine, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorEvent } from '../machines/supervisor-types.js';
import type { Database, DatabaseHealth } from '../persistence/database.js';
import { getSupervisorState, getTask, type SupervisorDetailedState } from '../persistence/supervisor-repository.js';
import type { Transport, TransportHealth } from '../transport/transport.js';
import { manualDriver, type AgentDriver, type SupervisorCommand, type SupervisorHandle } from './agent-driver.js';
import { DurableSupervisor, type CommittedStep, type DurableSupervisorDeps, type SaveRetryPolicy } from './durable-supervisor.js';
import { QuestionAlreadyAnsweredError, RuntimeStoppedError, SupervisorNotRunningError, TaskNotFoundError } from './errors.js';
import { createRuntimeInspector, type InspectOption } from './inspection.js';
import { silentLogger, type Logger } from './logger.js';
import { createRegistryStore, type RegistryEntry, type RegistryStore } from './registry.js';
import { createScriptedDriver } from './scripted-driver.js';

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
  /** This daemon's name, stored as the supervisors' owner. */
  daemonId?: string;
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

export interface RuntimeHealth {
  ok: boolean;
  database: DatabaseHealth;
  transport: TransportHealth | { ok: true; kind: 'none'; detail: string };
}

/** Hooks the runtime's other parts (outbox relay, restoration, inbound consumers) attach to. */
export interface RuntimeHooks {
  onCommitted: Array<(supervisor: DurableSupervisor, step: CommittedStep) => void>;
  onShutdown: Array<() => Promise<void>>;
}

export interface SupervisorRuntime {
  readonly database: Database;
  readonly transport: Transport | undefined;
  readonly registry: RegistryStore;
  readonly logger: Logger;
  readonly subjectPrefix: string;
  readonly daemonId: string;
  readonly hooks: RuntimeHooks;
  /** Create a supervisor, commit it, and (by default) START it. Resolves after the commits. */
  spawn(input: SpawnInput): Promise<DurableSupervisor>;
  /** The running supervisor, if this daemon runs it. */
  get(id: string): DurableSupervisor | undefined;
  list(): DurableSupervisor[];
  /** Apply one event; resolves with the committed step. EventRefusedError when a guard refuses it. */
  send(id: string, command: SupervisorCommand): Promise<CommittedStep>;
  askQuestion(id: string, question: { question: string; choices?: string[]; context?: string; questionId?: string }): Promise<{ questionId: string }>;
  /** First answer wins: a second answer raises QuestionAlreadyAnsweredError carrying the first. */
  answerQuestion(id: string, questionId: string, answer: string): Promise<CommittedStep>;
  spawnTask(id: string, task: { description: string; taskId?: string }): Promise<{ taskId: string }>;
  /** Route a task's progress, completion or failure to the supervisor that spawned it. */
  reportTaskEvent(taskId: string, event: { type: 'progress' | 'completed' | 'failed'; progress?: number; result?: string; error?: string }): Promise<CommittedStep>;
  /** The stored detailed state (fresh read after commits). */
  describe(id: string): Promise<SupervisorDetailedState>;
  /** Bring a supervisor back from the database through the restoration protocol. */
  restore(id: string, source: RestorationSource): Promise<RestorationInfo>;
  /** Put a restored snapshot to work (used by the restoration protocol). */
  adopt(snapshot: SupervisorSnapshot, step: number, driverName: string): DurableSupervisor;
  /** Commit a brand-new snapshot over whatever is stored, at `step` (the restoration protocol's fresh start). */
  createFresh(initial: SupervisorSnapshot, driverName: string, step: number): Promise<DurableSupervisor>;
  /** The runtime's clock. */
  now(): Date;
  /** Where actors are inspected (also used for the restoration actor). */
  readonly inspectObserver: Observer<InspectionEvent> | undefined;
  stop(id: string): Promise<void>;
  health(): Promise<RuntimeHealth>;
  handleFor(supervisor: DurableSupervisor): SupervisorHandle;
  driver(name: string | null | undefined): AgentDriver;
  /** Flush queued saves, stop actors and background work, close transport and database. */
  shutdown(options?: { closeDatabase?: boolean; closeTransport?: boolean }): Promise<void>;
  /** Set by the restoration module. */
  restorer?: (id: string, source: RestorationSource) => Promise<RestorationInfo>;
  /** Queue the agent driver's callbacks for this supervisor instead of running them (while it is being restored). */
  holdDriver(id: string): void;
  /** Run the queued callbacks in order and stop queueing; `discard` drops them (the restoration failed). */
  releaseDriver(id: string, options?: { discard?: boolean }): void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TASK_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function createRuntime(options: RuntimeOptions): SupervisorRuntime {
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const registry = createRegistryStore();
  const inspector = createRuntimeInspector(options.inspect);
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
  let stopping = false;

  const deps: DurableSupervisorDeps = {
    database: options.database,
    logger,
    now,
    subjectPrefix: options.subjectPrefix ?? '',
    owner: options.daemonId ?? null,
    inspect: inspector.observer,
    retry: { attempts: options.saveRetry?.attempts ?? 5, baseDelayMs: options.saveRetry?.baseDelayMs ?? 100 },
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    onDesynchronized: (supervisor) => {
      if (stopping || supervisors.get(supervisor.id) !== supervisor) return;
      const reload = runtime.restorer ? runtime.restorer(supervisor.id, 'manual') : runtime.stop(supervisor.id);
      void Promise.resolve(reload).catch((error: unknown) =>
        logger.error({ supervisorId: supervisor.id, err: errorText(error) }, 'could not reload the supervisor; resume it with POST /supervisors/:id/resume'),
      );
    },
    onCommitted: (supervisor, step) => {
      registry.trigger.upsert(registryEntry(supervisor));
      for (const hook of hooks.onCommitted) hook(supervisor, step);
      dispatchToDriver(supervisor, step);
    },
  };

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

  function driverFor(name: string | null | undefined): AgentDriver {
    return drivers.get(name ?? defaultDriver) ?? drivers.get(defaultDriver) ?? manualDriver;
  }

  // Drivers hear only committed facts, after the step that caused them settled, so they may send events themselves.
  function dispatchToDriver(supervisor: DurableSupervisor, step: CommittedStep): void {
    const driver = driverFor(supervisor.driverName);
    const handle = handleFor(supervisor);
    const calls: Array<() => void | Promise<void>> = [];
    if (step.event?.type === 'START' && driver.onStarted) calls.push(() => driver.onStarted?.(handle));
    const restored = step.event?.type === 'RESTORED' ? step.event : null;
    if (restored && driver.onRestored) calls.push(() => driver.onRestored?.(handle, { source: restored.source, contextMessage: restored.contextMessage }));
    for (const effect of step.effects) {
      if (effect.type === 'answerReceived' && driver.onQuestionAnswered) calls.push(() => driver.onQuestionAnswered?.(handle, effect.params));
      if (effect.type === 'taskFinished' && driver.onTaskFinished) calls.push(() => driver.onTaskFinished?.(handle, effect.params));
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

  function handleFor(supervisor: DurableSupervisor): SupervisorHandle {
    return {
      id: supervisor.id,
      state: () => supervisor.state,
      context: () => supervisor.snapshot.context,
      send: async (command) => {
        await runtime.send(supervisor.id, command);
      },
    };
  }

  function running(id: string): DurableSupervisor {
    if (stopping) throw new RuntimeStoppedError();
    const supervisor = supervisors.get(id);
    if (!supervisor || supervisor.stopped) throw new SupervisorNotFoundError(id);
    return supervisor;
  }

  async function requireRunning(id: string): Promise<DurableSupervisor> {
    if (stopping) throw new RuntimeStoppedError();
    const supervisor = supervisors.get(id);
    if (supervisor && !supervisor.stopped) return supervisor;
    const stored = await getSupervisorState(options.database.db, id);
    if (!stored) throw new SupervisorNotFoundError(id);
    if (isTerminalState(stored.state)) {
      throw new EventRefusedError(id, 'event', `supervisor is ${stored.state} and accepts no more events`, stored.state);
    }
    throw new SupervisorNotRunningError(id, stored.state);
  }

  /** A caller-chosen task id must fit a subject token and must not belong to another supervisor's task. */
  async function spawnWithTaskId(id: string, taskId: string, command: SupervisorCommand): Promise<CommittedStep> {
    if (!TASK_ID.test(taskId)) throw new InvalidSupervisorDataError(id, 'taskId', 'must be 1–128 letters, digits, "_" or "-" (it becomes a NATS subject token)');
    const existing = await getTask(options.database.db, taskId);
    if (existing && existing.supervisorId !== id) {
      throw new EventRefusedError(id, 'SPAWN_TASK', `task id ${taskId} is already used by supervisor ${existing.supervisorId}`, supervisors.get(id)?.state ?? 'unknown');
    }
    const supervisor = await requireRunning(id);
    return supervisor.send(toEvent(command));
  }

  /** Enqueue synchronously when the supervisor runs here: a send made before shutdown() is a queued save it waits for. */
  function enqueue(id: string, event: SupervisorEvent): Promise<CommittedStep> {
    const supervisor = stopping ? undefined : supervisors.get(id);
    if (supervisor && !supervisor.stopped) return supervisor.send(event);
    return requireRunning(id).then((found) => found.send(event));
  }

  function toEvent(command: SupervisorCommand): SupervisorEvent {
    const at = command.at ?? now().toISOString();
    if (command.type === 'ASK_QUESTION') return { ...command, questionId: command.questionId ?? randomUUID(), at };
    if (command.type === 'SPAWN_TASK') return { ...command, taskId: command.taskId ?? randomUUID(), at };
    return { ...command, at } as SupervisorEvent;
  }

  const runtime: SupervisorRuntime = {
    database: options.database,
    transport: options.transport,
    registry,
    logger,
    subjectPrefix: deps.subjectPrefix,
    daemonId: options.daemonId ?? `daemon-${process.pid}`,
    hooks,

    async spawn(input) {
      if (stopping) throw new RuntimeStoppedError();
      const id = input.id ?? randomUUID();
      if (!UUID.test(id)) throw new InvalidSupervisorDataError(id, 'id', 'must be a UUID');
      if (typeof input.name !== 'string' || input.name.trim() === '') throw new InvalidSupervisorDataError(id, 'name', 'must be a non-empty string');
      if (input.driver !== undefined && !drivers.has(input.driver)) {
        throw new InvalidSupervisorDataError(id, 'driver', `must be one of ${[...drivers.keys()].join(', ')} (got "${input.driver}")`);
      }
      // Only a caller-chosen id can be taken; a fresh UUID skips the read (the step fence would refuse an overwrite anyway).
      if (supervisors.has(id) || (input.id !== undefined && (await getSupervisorState(options.database.db, id)))) {
        throw new InvalidSupervisorDataError(id, 'id', 'is already taken by another supervisor');
      }
      const [initial] = initialTransition(supervisorMachine, {
        supervisorId: id,
        name: input.name.trim(),
        ...(input.phase ? { phase: input.phase } : {}),
        createdAt: now().toISOString(),
      });
      const supervisor = await DurableSupervisor.create(deps, initial, input.driver ?? defaultDriver);
      supervisors.set(id, supervisor);
      registry.trigger.upsert(registryEntry(supervisor));
      if (input.start !== false) await supervisor.send({ type: 'START', at: now().toISOString() });
      supervisor.startHeartbeat();
      logger.info({ supervisorId: id, name: input.name, driver: supervisor.driverName }, 'supervisor spawned');
      return supervisor;
    },

    get: (id) => {
      const supervisor = supervisors.get(id);
      return supervisor && !supervisor.stopped ? supervisor : undefined;
    },

    list: () => [...supervisors.values()].filter((supervisor) => !supervisor.stopped),

    send(id, command) {
      if (command.type === 'SPAWN_TASK' && command.taskId !== undefined) return spawnWithTaskId(id, command.taskId, command);
      return enqueue(id, toEvent(command));
    },

    async askQuestion(id, question) {
      const questionId = question.questionId ?? randomUUID();
      await runtime.send(id, {
        type: 'ASK_QUESTION',
        questionId,
        question: question.question,
        ...(question.choices ? { choices: question.choices } : {}),
        ...(question.context ? { context: question.context } : {}),
      });
      return { questionId };
    },

    async answerQuestion(id, questionId, answer) {
      const supervisor = supervisors.get(id);
      const first = supervisor?.snapshot.context.answeredQuestions.find((answered) => answered.id === questionId);
      if (supervisor && first) throw new QuestionAlreadyAnsweredError(id, questionId, first.answer, first.answeredAt);
      try {
        return await runtime.send(id, { type: 'ANSWER', questionId, answer });
      } catch (error) {
        // Two answers racing: the loser is refused inside the queue, after the winner committed.
        const winner = supervisors.get(id)?.snapshot.context.answeredQuestions.find((answered) => answered.id === questionId);
        if (error instanceof EventRefusedError && winner) throw new QuestionAlreadyAnsweredError(id, questionId, winner.answer, winner.answeredAt);
        throw error;
      }
    },

    async spawnTask(id, task) {
      if (task.taskId !== undefined) {
        await runtime.send(id, { type: 'SPAWN_TASK', taskId: task.taskId, description: task.description });
        return { taskId: task.taskId };
      }
      // A fresh UUID cannot collide, so it skips the ownership lookup.
      const taskId = randomUUID();
      await enqueue(id, toEvent({ type: 'SPAWN_TASK', taskId, description: task.description }));
      return { taskId };
    },

    async reportTaskEvent(taskId, event) {
      const task = await getTask(options.database.db, taskId);
      if (!task) throw new TaskNotFoundError(taskId);
      return runtime.send(task.supervisorId, {
        type: 'TASK_EVENT',
        taskId,
        kind: event.type,
        ...(event.progress !== undefined ? { progress: event.progress } : {}),
        ...(event.result !== undefined ? { result: event.result } : {}),
        ...(event.error !== undefined ? { error: event.error } : {}),
      });
    },

    async describe(id) {
      const stored = await getSupervisorState(options.database.db, id);
      if (!stored) throw new SupervisorNotFoundError(id);
      return stored;
    },

    async restore(id, source) {
      if (!runtime.restorer) throw new Error('No restoration protocol attached: call attachRestoration(runtime) first.');
      return runtime.restorer(id, source);
    },

    async createFresh(initial, driverName, step) {
      const id = initial.context.supervisorId;
      const supervisor = await DurableSupervisor.create(deps, initial, drivers.has(driverName) ? driverName : defaultDriver, step);
      supervisors.set(id, supervisor);
      registry.trigger.upsert(registryEntry(supervisor));
      return supervisor;
    },

    now,
    inspectObserver: inspector.observer,

    adopt(snapshot, step, driverName) {
      const id = snapshot.context.supervisorId;
      const supervisor = DurableSupervisor.restore(deps, snapshot, step, drivers.has(driverName) ? driverName : defaultDriver);
      supervisors.set(id, supervisor);
      registry.trigger.upsert(registryEntry(supervisor));
      return supervisor;
    },

    async stop(id) {
      const supervisor = supervisors.get(id);
      if (!supervisor) return;
      await supervisor.stop();
      supervisors.delete(id);
      registry.trigger.remove({ id });
    },

    async health() {
      const database = await options.database.health();
      const transport = options.transport ? await options.transport.health() : ({ ok: true, kind: 'none', detail: 'no transport configured' } as const);
      return { ok: database.ok && transport.ok, database, transport };
    },

    handleFor,
    driver: driverFor,

    holdDriver(id) {
      if (!heldDrivers.has(id)) heldDrivers.set(id, []);
    },

    releaseDriver(id, releaseOptions = {}) {
      const held = heldDrivers.get(id);
      heldDrivers.delete(id);
      if (!held || releaseOptions.discard) return;
      // In commit order, as if they had been dispatched when their steps committed.
      for (const run of held) setImmediate(run);
    },

    async shutdown(shutdownOptions = {}) {
      if (stopping) return;
      stopping = true;
      // Queued saves finish first; only then do the relay, the transport and the database go away.
      await Promise.all([...supervisors.values()].map((supervisor) => supervisor.stop()));
      for (const hook of hooks.onShutdown) {
        try {
          await hook();
        } catch (error) {
          logger.warn({ err: errorText(error) }, 'shutdown hook failed');
        }
      }
      inspector.stop();
      if (shutdownOptions.closeTransport !== false) await options.transport?.close().catch(() => undefined);
      if (shutdownOptions.closeDatabase !== false) await options.database.close();
    },
  };
  return runtime;
}

export type { SupervisorState };
