// One supervisor made durable: compute the transition purely, commit it as a save point, only then make it visible
// (live actor, registry, effects). Steps of one supervisor run one at a time, in order.

import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { DatabaseUnavailableError, EventRefusedError, errorText } from '../domain/errors.js';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import { effectsOf, explainRefusal, SUPERVISOR_MACHINE_VERSION, supervisorMachine, transitionSupervisor, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorEffect, SupervisorEvent } from '../machines/supervisor-types.js';
import type { Database } from '../persistence/database.js';
import { isNoAnswer } from '../persistence/database-errors.js';
import { isDeepStrictEqual } from 'node:util';
import { getSupervisorStateForRestoration, StaleWriteError, type ForkOrigin, type OutboxWrite } from '../persistence/supervisor-repository.js';
import { OwnershipLostError } from '../persistence/ownership/errors.js';
import { SaveFailedError } from './errors.js';
import type { Logger } from './logger.js';
import type { SaveBatcher } from './save-batcher.js';
import { fullSaveInput, saveKindFor, type SaveKind } from './save-plan.js';

export interface SaveRetryPolicy {
  /** Attempts per save point before the supervisor is interrupted (default 5). */
  attempts: number;
  /** First backoff; doubles each attempt (default 100 ms). */
  baseDelayMs: number;
}

export interface DurableSupervisorDeps {
  database: Database;
  /** Group commit: every save point and heartbeat goes through it, together with those of other supervisors. */
  saves: SaveBatcher;
  logger: Logger;
  now: () => Date;
  subjectPrefix: string;
  /** This daemon's id: every write names it with the supervisor's epoch, and is refused once another daemon claimed it. */
  owner: string;
  inspect: Observer<InspectionEvent> | undefined;
  retry: SaveRetryPolicy;
  heartbeatIntervalMs: number;
  /** Called after every committed step, in order, before the caller's promise resolves. */
  onCommitted(supervisor: DurableSupervisor, step: CommittedStep): void;
  /**
   * The stored row moved past this copy (a save refused as stale that was not our own lost reply): the copy stops
   * taking events and the runtime reloads the supervisor from the database. Called outside the step queue.
   */
  onDesynchronized(supervisor: DurableSupervisor, error: StaleWriteError): void;
  /**
   * A write was refused because another daemon claimed the supervisor: this copy has already stopped (nothing more is
   * written, nothing re-delivered); the runtime forgets it. Called outside the step queue.
   */
  onOwnershipLost(supervisor: DurableSupervisor, error: OwnershipLostError): void;
}

export interface CommittedStep {
  /** null for the creation of a new supervisor. */
  event: SupervisorEvent | null;
  before: SupervisorSnapshot;
  after: SupervisorSnapshot;
  effects: SupervisorEffect[];
  kind: SaveKind;
  reason: string;
  /** Checkpoint written by a full save. */
  checkpointSeq: number | null;
  /** The outbox rows that committed with this step (the relay may publish them at once, in this order). */
  outbox?: OutboxWrite[];
  /** How long the save point took to commit, retries included (ms). */
  saveMs?: number;
  /** A fork's creation: the checkpoint it was made from (its save point records the lineage and copies the conversation). */
  forkedFrom?: ForkOrigin;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class DurableSupervisor {
  readonly id: string;
  #snapshot: SupervisorSnapshot;
  #step: number;
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * The live actor: made at once when an inspector watches (it sees every supervisor from its start), otherwise on the
   * first read of `actor`; from then on it receives every committed event. Without a reader a second interpreter
   * stepping through each event is pure cost (a fifth of the Node CPU of a group-committed save point).
   */
  #live: Actor<typeof supervisorMachine> | null = null;
  #heartbeat: NodeJS.Timeout | undefined;
  #stopped = false;
  /** A committed-in-memory INTERRUPT whose save point still waits for the database. */
  #unsaved: { step: CommittedStep; stepNumber: number } | null = null;
  #desynchronized: StaleWriteError | null = null;
  /** An outage's INTERRUPT was saved; the RESUME that undoes it still has to commit. */
  #resumePending = false;
  /** START was not committed because the database was away: it is sent by itself once the outage's RESUME commits. */
  #startPending = false;
  #lost: OwnershipLostError | null = null;
  #flushTimer: NodeJS.Timeout | undefined;
  /** The checkpoint of the newest committed full save point (null until one is known), and when a step last committed. */
  #checkpointSeq: number | null = null;
  #committedAt: Date | null = null;

  private constructor(
    private readonly deps: DurableSupervisorDeps,
    snapshot: SupervisorSnapshot,
    step: number,
    readonly driverName: string,
    /** The fencing epoch this daemon holds the supervisor at. */
    readonly epoch: number,
  ) {
    this.id = snapshot.context.supervisorId;
    this.#snapshot = snapshot;
    this.#step = step;
    if (deps.inspect) this.#live = this.#startLiveActor();
  }

  /** A live actor started from the newest committed snapshot. */
  #startLiveActor(): Actor<typeof supervisorMachine> {
    const actor = createActor(supervisorMachine, {
      snapshot: supervisorMachine.getPersistedSnapshot(this.#snapshot),
      id: `supervisor:${this.id}`,
      ...(this.deps.inspect ? { inspect: this.deps.inspect } : {}),
    });
    actor.start();
    return actor;
  }

  #replaceLiveActor(): void {
    this.#live?.stop();
    this.#live = this.#startLiveActor();
  }

  /**
   * Commit a new supervisor (checkpoint "created") and return it running. `step` is 1 for a new id; a fresh start over
   * an existing row passes a step after the stored one, so the write is not refused as stale.
   */
  /**
   * Commit a new supervisor's first save point. A fork's creation also carries the effects that make its open work its
   * own (its questions asked, its tasks spawned, its notice appended) and the checkpoint it came from.
   */
  static async create(
    deps: DurableSupervisorDeps,
    initial: SupervisorSnapshot,
    driverName: string,
    placement: { step: number; epoch: number } = { step: 1, epoch: 1 },
    creation: { effects?: SupervisorEffect[]; reason?: string; forkedFrom?: ForkOrigin } = {},
  ): Promise<DurableSupervisor> {
    const { step, epoch } = placement;
    const supervisor = new DurableSupervisor(deps, initial, 0, driverName, epoch);
    try {
      await supervisor.#enqueue(async () => {
        const committed: CommittedStep = {
          event: null,
          before: initial,
          after: initial,
          effects: creation.effects ?? [],
          kind: 'full',
          reason: creation.reason ?? 'created',
          checkpointSeq: null,
          ...(creation.forkedFrom ? { forkedFrom: creation.forkedFrom } : {}),
        };
        const saveStarted = performance.now();
        committed.checkpointSeq = await supervisor.#saveFull(committed, step, null);
        committed.saveMs = performance.now() - saveStarted;
        supervisor.#step = step;
        supervisor.#checkpointSeq = committed.checkpointSeq;
        supervisor.#committedAt = deps.now();
        deps.onCommitted(supervisor, committed);
      });
    } catch (error) {
      supervisor.#live?.stop();
      throw error;
    }
    return supervisor;
  }

  /** Bring back a supervisor whose snapshot was already validated and is stored at `step`. */
  static restore(deps: DurableSupervisorDeps, snapshot: SupervisorSnapshot, step: number, driverName: string, epoch: number, checkpointSeq?: number): DurableSupervisor {
    const supervisor = new DurableSupervisor(deps, snapshot, step, driverName, epoch);
    supervisor.#checkpointSeq = checkpointSeq ?? null;
    return supervisor;
  }

  /**
   * What this daemon holds as committed: the snapshot of the newest committed step, at which step and checkpoint, and
   * when it committed. A reply built from it is true even when the database cannot be read back.
   */
  get committed(): { snapshot: SupervisorSnapshot; step: number; checkpointSeq: number | null; committedAt: Date | null } {
    return { snapshot: this.#snapshot, step: this.#step, checkpointSeq: this.#checkpointSeq, committedAt: this.#committedAt };
  }

  get snapshot(): SupervisorSnapshot {
    return this.#snapshot;
  }

  get state(): SupervisorState {
    return this.#snapshot.value as SupervisorState;
  }

  get step(): number {
    return this.#step;
  }

  get degraded(): boolean {
    return this.#unsaved !== null;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Set once a write was refused because another daemon owns the supervisor now. */
  get ownershipLost(): boolean {
    return this.#lost !== null;
  }

  /**
   * The live actor (what the inspector shows); it only ever receives events that were committed. Read first after
   * some steps, it starts from the newest committed snapshot; a stopped supervisor's actor is stopped too.
   */
  get actor(): Actor<typeof supervisorMachine> {
    if (!this.#live) {
      this.#live = this.#startLiveActor();
      if (this.#stopped) this.#live.stop();
    }
    return this.#live;
  }

  /**
   * Apply one event through its save point. Resolves after the commit; rejects with EventRefusedError or SaveFailedError.
   * `check`, when given, runs in the event's turn (after the steps sent before it committed) and refuses it by throwing.
   */
  send(event: SupervisorEvent, check?: () => Promise<void>): Promise<CommittedStep> {
    return this.#enqueue(async () => {
      await check?.();
      return this.#apply(event);
    });
  }

  /**
   * START, for a supervisor whose creation committed. If the database goes away first, the supervisor stays created
   * (interrupted, visible) and starts by itself once the database is back, so the creation is never reported unwritten.
   * Resolves with the committed START, or null when it waits for the database.
   */
  async start(): Promise<CommittedStep | null> {
    try {
      return await this.send({ type: 'START', at: this.deps.now().toISOString() });
    } catch (error) {
      if (!(error instanceof SaveFailedError)) throw error;
      this.#startPending = true;
      this.deps.logger.warn({ supervisorId: this.id, err: errorText(error) }, 'supervisor created; it starts once the database is back');
      this.#scheduleFlush();
      return null;
    }
  }

  /**
   * RESUME, for a supervisor whose creation committed in `interrupted` (a fork of an interrupted checkpoint). Like
   * start(): if the database goes away first, it resumes by itself once the database is back (and then STARTs, with
   * `start`, if it comes back `initializing`). Resolves with the committed RESUME, or null when it waits for the database.
   */
  async resume(options: { start?: boolean } = {}): Promise<CommittedStep | null> {
    try {
      return await this.send({ type: 'RESUME', at: this.deps.now().toISOString() });
    } catch (error) {
      if (!(error instanceof SaveFailedError)) throw error;
      this.#resumePending = true;
      if (options.start) this.#startPending = true;
      this.deps.logger.warn({ supervisorId: this.id, err: errorText(error) }, 'supervisor created; it resumes once the database is back');
      this.#scheduleFlush();
      return null;
    }
  }

  /** Wait until every queued step has settled. */
  async flush(): Promise<void> {
    await this.#queue.catch(() => undefined);
  }

  /** Start the heartbeat timer; the first beat comes when the stored one is due (a restore keeps the remaining time). */
  startHeartbeat(): void {
    if (this.#stopped || this.deps.heartbeatIntervalMs <= 0 || isTerminalState(this.state)) return;
    const last = this.#snapshot.context.lastHeartbeatAt ? Date.parse(this.#snapshot.context.lastHeartbeatAt) : Number.NaN;
    const elapsed = Number.isNaN(last) ? this.deps.heartbeatIntervalMs : this.deps.now().getTime() - last;
    const firstIn = Math.max(0, Math.min(this.deps.heartbeatIntervalMs, this.deps.heartbeatIntervalMs - elapsed));
    this.#scheduleHeartbeat(firstIn);
  }

  /**
   * Beats land on a shared tick (a tenth of the interval, at most 1 s): the supervisors due in one tick beat together,
   * and the batcher writes them in one statement.
   */
  #scheduleHeartbeat(delayMs: number): void {
    clearTimeout(this.#heartbeat);
    const tick = Math.max(1, Math.min(1_000, Math.floor(this.deps.heartbeatIntervalMs / 10)));
    const now = Date.now();
    const aligned = Math.ceil((now + delayMs) / tick) * tick - now;
    this.#heartbeat = setTimeout(() => {
      if (this.#stopped || isTerminalState(this.state)) return;
      this.send({ type: 'HEARTBEAT', at: this.deps.now().toISOString() })
        .catch((error: unknown) => this.deps.logger.warn({ supervisorId: this.id, err: errorText(error) }, 'heartbeat not saved'))
        .finally(() => this.#scheduleHeartbeat(this.deps.heartbeatIntervalMs));
    }, aligned);
    this.#heartbeat.unref();
  }

  /** Stop the live actor and timers after queued steps settle; nothing more is written. */
  async stop(): Promise<void> {
    clearTimeout(this.#heartbeat);
    clearTimeout(this.#flushTimer);
    await this.flush();
    this.#stopped = true;
    this.#live?.stop();
  }

  #enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(
      () => operation(),
      () => operation(),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(event: SupervisorEvent): Promise<CommittedStep> {
    if (this.#lost) throw this.#lost;
    if (this.#stopped) throw new EventRefusedError(this.id, event.type, 'supervisor is stopped in this daemon', this.state);
    if (this.#desynchronized) throw this.#desynchronized;
    await this.#flushUnsaved(event.type);
    const before = this.#snapshot;
    const refusal = explainRefusal(before, event);
    if (refusal) throw new EventRefusedError(this.id, event.type, refusal, this.state);
    const [after, actions] = transitionSupervisor(before, event);
    const effects = effectsOf(actions);
    const { kind, reason } = saveKindFor(event, before, after);
    const committed: CommittedStep = { event, before, after, effects, kind, reason, checkpointSeq: null };
    const saveStarted = performance.now();
    try {
      if (kind === 'full') {
        committed.checkpointSeq = await this.#saveFull(committed, this.#step + 1, before.value as SupervisorState);
        this.#step += 1;
      } else {
        const context = after.context;
        await this.#withRetry(() =>
          this.deps.saves.heartbeat({
            supervisorId: this.id,
            at: context.lastHeartbeatAt ?? event.at,
            currentActivity: context.currentActivity,
            progress: context.progress,
            fence: { owner: this.deps.owner, epoch: this.epoch },
          }),
        );
      }
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) {
        this.#interruptAfterOutage(error);
        throw new SaveFailedError(this.id, event.type, error);
      }
      if (error instanceof OwnershipLostError) this.#loseOwnership(error);
      if (error instanceof StaleWriteError) this.#desynchronize(error);
      throw error;
    }
    committed.saveMs = performance.now() - saveStarted;
    this.#makeVisible(committed);
    return committed;
  }

  /** Everything after the commit: the live actor follows, then the runtime runs effects and updates the registry. */
  #makeVisible(committed: CommittedStep): void {
    this.#snapshot = committed.after;
    if (committed.checkpointSeq !== null) this.#checkpointSeq = committed.checkpointSeq;
    this.#committedAt = this.deps.now();
    if (this.#live) {
      if (committed.event && this.#live.getSnapshot().status === 'active') this.#live.send(committed.event);
      // A finished actor ignores every event (RESTORED included): start a fresh live actor from the committed snapshot.
      if (this.#live.getSnapshot().status !== 'active' && committed.event?.type === 'RESTORED') this.#replaceLiveActor();
      if (this.#live.getSnapshot().value !== committed.after.value) {
        this.deps.logger.error({ supervisorId: this.id, live: this.#live.getSnapshot().value, durable: committed.after.value }, 'live actor diverged from the durable state');
      }
    }
    this.deps.logger.debug({ supervisorId: this.id, event: committed.event?.type ?? 'CREATE', save: committed.kind, reason: committed.reason, step: this.#step, state: this.state }, 'save point committed');
    this.deps.onCommitted(this, committed);
  }

  async #saveFull(committed: CommittedStep, stepNumber: number, previousState: SupervisorState | null): Promise<number> {
    const input = fullSaveInput({
      snapshot: committed.after,
      persisted: supervisorMachine.getPersistedSnapshot(committed.after),
      machineVersion: SUPERVISOR_MACHINE_VERSION,
      step: stepNumber,
      reason: committed.reason,
      effects: committed.effects,
      previousState,
      subjectPrefix: this.deps.subjectPrefix,
      driver: this.driverName,
      owner: this.deps.owner,
      epoch: this.epoch,
      at: committed.event?.at ?? committed.after.context.createdAt,
      ...(committed.forkedFrom ? { forkedFrom: committed.forkedFrom } : {}),
    });
    const result = await this.#withRetry(async (attempt) => {
      try {
        return await this.deps.saves.save(input);
      } catch (error) {
        // A retry refused as stale may mean the first attempt committed and only its reply was lost: if the stored row
        // is exactly this step and snapshot, the save point is done.
        if (error instanceof StaleWriteError && attempt > 1) {
          const stored = await getSupervisorStateForRestoration(this.deps.database.db, this.id);
          if (stored && stored.step === stepNumber && isDeepStrictEqual(stored.snapshot, JSON.parse(JSON.stringify(input.snapshot)))) return { checkpointSeq: stored.checkpointSeq };
        }
        throw error;
      }
    });
    committed.outbox = input.outbox ?? [];
    return result.checkpointSeq;
  }

  async #withRetry<T>(write: (attempt: number) => Promise<T>): Promise<T> {
    const { attempts, baseDelayMs } = this.deps.retry;
    // Once an attempt may have committed, a later attempt's "nothing written" does not make the whole unknown known.
    let unknown: DatabaseUnavailableError | null = null;
    for (let attempt = 1; ; attempt++) {
      try {
        return await write(attempt);
      } catch (error) {
        if (error instanceof DatabaseUnavailableError && error.outcome === 'unknown') unknown = error;
        if (error instanceof DatabaseUnavailableError && attempt >= attempts && unknown && error.outcome !== 'unknown') throw unknown;
        if (!(error instanceof DatabaseUnavailableError) || attempt >= attempts) throw error;
        // The database did not answer (a statement or a new connection) within the timeout: another attempt would wait
        // as long again. Give up now (the caller hears within one timeout); the interruption's save retries it in order.
        if (isNoAnswer(error.cause)) throw error;
        this.deps.logger.warn({ supervisorId: this.id, attempt, err: errorText(error) }, 'save point failed, retrying');
        await sleep(baseDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  /**
   * The database stayed down: the supervisor goes to `interrupted` with the error, visible at once, and its save point
   * is retried in order before any later step (so no later state is ever written over an earlier one).
   */
  #interruptAfterOutage(error: DatabaseUnavailableError): void {
    if (this.#unsaved || this.state === 'interrupted' || isTerminalState(this.state)) return;
    const event: SupervisorEvent = { type: 'INTERRUPT', reason: `database unavailable: ${errorText(error.cause ?? error)}`, at: this.deps.now().toISOString() };
    if (explainRefusal(this.#snapshot, event)) return;
    const [after, actions] = transitionSupervisor(this.#snapshot, event);
    const committed: CommittedStep = { event, before: this.#snapshot, after, effects: effectsOf(actions), kind: 'full', reason: 'interrupted', checkpointSeq: null };
    this.#unsaved = { step: committed, stepNumber: this.#step + 1 };
    this.deps.logger.error({ supervisorId: this.id, err: errorText(error) }, 'database unavailable: supervisor interrupted until its save point commits');
    this.#makeVisible(committed);
    this.#scheduleFlush();
  }

  /** Fenced out: stop at once, from inside the queue; steps queued behind this one are refused with the same error. */
  #loseOwnership(error: OwnershipLostError): void {
    if (this.#lost) return;
    this.#lost = error;
    this.#stopped = true;
    this.#unsaved = null;
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#heartbeat);
    this.#live?.stop();
    this.deps.logger.warn(
      { supervisorId: this.id, epoch: this.epoch, owner: error.current.owner, currentEpoch: error.current.epoch },
      'another daemon owns this supervisor now: stopped it here without writing',
    );
    setImmediate(() => this.deps.onOwnershipLost(this, error));
  }

  #desynchronize(error: StaleWriteError): void {
    if (this.#desynchronized) return;
    this.#desynchronized = error;
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#heartbeat);
    this.deps.logger.error({ supervisorId: this.id, step: this.#step }, 'stored state is newer than this copy: reloading the supervisor from the database');
    // Outside the queue: reloading stops this copy, which waits for the queue to drain.
    setImmediate(() => this.deps.onDesynchronized(this, error));
  }

  #scheduleFlush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = setTimeout(() => {
      if (this.#stopped || (!this.#unsaved && !this.#resumePending && !this.#startPending)) return;
      this.#enqueue(() => this.#flushUnsaved('retry')).catch(() => this.#scheduleFlush());
    }, 1_000);
    this.#flushTimer.unref();
  }

  async #flushUnsaved(cause: string): Promise<void> {
    const pending = this.#unsaved;
    if (pending) {
      try {
        pending.step.checkpointSeq = await this.#saveFull(pending.step, pending.stepNumber, pending.step.before.value as SupervisorState);
      } catch (error) {
        if (error instanceof OwnershipLostError) this.#loseOwnership(error);
        if (error instanceof StaleWriteError) {
          // The step before the outage committed after all (its reply was lost): what is stored is newer than this copy.
          this.#unsaved = null;
          this.#desynchronize(error);
        }
        throw error instanceof DatabaseUnavailableError ? new SaveFailedError(this.id, cause, error) : error;
      }
      this.#step = pending.stepNumber;
      this.#unsaved = null;
      this.#resumePending = true;
      this.deps.logger.info({ supervisorId: this.id, step: this.#step }, 'database back: interrupted state saved');
      this.deps.onCommitted(this, pending.step);
    }
    if (this.#resumePending) {
      // The database, not a person, interrupted it: once that is recorded, it resumes by itself (a RESUME save point of
      // its own, so the checkpoints show both). `interrupted` stays for what needs a person.
      this.#resumePending = false;
      const resume: SupervisorEvent = { type: 'RESUME', at: this.deps.now().toISOString() };
      if (!explainRefusal(this.#snapshot, resume)) {
        await this.#retryLater('resume', () => this.#apply(resume));
        this.deps.logger.info({ supervisorId: this.id, state: this.state }, 'database back: supervisor resumed by itself');
      }
    }
    // Created while the database went away: back in `initializing`, it takes the START it was spawned with.
    if (this.#startPending && this.state === 'initializing') {
      this.#startPending = false;
      await this.#retryLater('start', () => this.#apply({ type: 'START', at: this.deps.now().toISOString() }));
      this.deps.logger.info({ supervisorId: this.id, state: this.state }, 'database back: supervisor started');
    }
  }

  /** Run a step the supervisor owes itself; if the database is still away, it is owed again at the next flush. */
  async #retryLater(what: 'resume' | 'start', step: () => Promise<CommittedStep>): Promise<void> {
    try {
      await step();
    } catch (error) {
      if (error instanceof SaveFailedError || error instanceof DatabaseUnavailableError) {
        if (what === 'resume') this.#resumePending = true;
        else this.#startPending = true;
        this.#scheduleFlush();
      }
      throw error;
    }
  }
}
