// Durable consumers that feed answers and task events from the transport into the runtime, acking only after the save point committed.
//
// Every message ends in exactly one of: applied (ack), duplicate or refused (ack: it can never apply), malformed or unknown
// (term: it never will either), or "not now" (nak with a delay: database down, supervisor not running here yet).

import { EventRefusedError, SupervisorNotFoundError, errorText, DatabaseUnavailableError } from '../domain/errors.js';
import { isSupervisorState, isTerminalState } from '../domain/supervisor-state.js';
import { getTask } from '../persistence/supervisor-repository.js';
import { parseAnswerMessage, parseTaskEventMessage } from '../transport/messages.js';
import { ALL_ANSWERS, ALL_TASK_EVENTS, parseSupervisorSubjectParts, parseTaskEventsSubject, withPrefix } from '../transport/subjects.js';
import type { InboundMessage, Subscription } from '../transport/transport.js';
import { QuestionAlreadyAnsweredError, RuntimeStoppedError, SaveFailedError, SupervisorNotRunningError, TaskNotFoundError } from './errors.js';
import type { Logger } from './logger.js';
import type { SupervisorRuntime } from './supervisor-runtime.js';

export const ANSWERS_DURABLE = 'runtime-answers';
export const TASK_EVENTS_DURABLE = 'runtime-task-events';

export interface InboundConsumerOptions {
  /** Redeliver a message not settled within this time (default 30 s). */
  ackWaitMs?: number;
  /**
   * Deliveries before the transport gives a message up (default -1: never). A nak'd answer waits out a database
   * outage or a restoration however long it takes; dropping it would lose the human's answer.
   */
  maxDeliver?: number;
  /** First delay before a message that could not be applied now comes back; grows with each delivery (default 1 s). */
  retryDelayMs?: number;
  /** Longest such delay (default 10 s). */
  maxRetryDelayMs?: number;
  answersDurable?: string;
  taskEventsDurable?: string;
}

export interface InboundCounts {
  /** Committed and acked. */
  applied: number;
  /** Already applied before (first answer wins, task already finished): acked, nothing changed. */
  duplicates: number;
  /** Refused by the supervisor for another reason (not one of the choices, supervisor finished): acked, nothing changed. */
  refused: number;
  /** Not JSON, wrong fields, or a subject that names no supervisor or task: terminated. */
  malformed: number;
  /** Names a supervisor or task that does not exist: terminated. */
  unknown: number;
  /** Could not be applied now (database down, supervisor not running here yet): nak'd, comes back later. */
  retried: number;
}

export interface InboundConsumerStats {
  answers: InboundCounts;
  taskEvents: InboundCounts;
  lastError: string | null;
}

export interface InboundConsumers {
  /** Stop both consumers; unsettled messages stay with the durable consumers. */
  stop(): Promise<void>;
  stats(): InboundConsumerStats;
}

type Outcome = { kind: 'applied' } | { kind: 'duplicate' | 'refused'; reason: string } | { kind: 'unknown'; reason: string } | { kind: 'retry'; reason: string; delayMs: number };

const emptyCounts = (): InboundCounts => ({ applied: 0, duplicates: 0, refused: 0, malformed: 0, unknown: 0, retried: 0 });

export async function startInboundConsumers(runtime: SupervisorRuntime, options: InboundConsumerOptions = {}): Promise<InboundConsumers> {
  const transport = runtime.transport;
  if (!transport) {
    throw new Error('Inbound consumers need a transport: create the runtime with `transport` (createTransport({ natsUrl }) or createInProcessBus()).');
  }
  const prefix = transport.subjectPrefix;
  const logger: Logger = runtime.logger.child({ component: 'inbound-consumers' });
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 10_000;
  // Never give up on an answer or a task event: one that cannot be applied yet (supervisor not restored, database down)
  // waits with backoff; only malformed and unknown ones are terminated.
  const subscribeDefaults = { ackWaitMs: options.ackWaitMs ?? 30_000, maxDeliver: options.maxDeliver ?? -1 };
  const counts = { answers: emptyCounts(), taskEvents: emptyCounts() };
  let lastError: string | null = null;
  let stopped = false;

  /** Longer waits for a message that keeps coming back. */
  const retryDelay = (message: InboundMessage) => Math.min(maxRetryDelayMs, retryDelayMs * 2 ** Math.min(10, Math.max(0, message.deliveryCount - 1)));

  /** Settle without letting a lost connection turn into a handler failure: the transport redelivers an unsettled message. */
  async function settle(message: InboundMessage, how: 'ack' | 'term' | 'nak', detail: { reason?: string; delayMs?: number } = {}): Promise<void> {
    try {
      if (how === 'ack') await message.ack();
      else if (how === 'term') await message.term(detail.reason ?? 'malformed');
      else await message.nak(detail.delayMs);
    } catch (error) {
      lastError = errorText(error);
      logger.warn({ subject: message.subject, msgId: message.msgId, settle: how, err: lastError }, 'could not settle a message; the transport will redeliver it');
    }
  }

  async function terminateMalformed(which: keyof typeof counts, message: InboundMessage, problems: string[]): Promise<void> {
    counts[which].malformed += 1;
    logger.warn({ subject: message.subject, msgId: message.msgId, problems }, 'malformed message terminated (it will not be redelivered)');
    await settle(message, 'term', { reason: `malformed: ${problems.join('; ')}` });
  }

  /** Errors that say "not now" versus "never". */
  function classify(error: unknown, message: InboundMessage, supervisorId: string | undefined): Outcome | null {
    if (error instanceof QuestionAlreadyAnsweredError) return { kind: 'duplicate', reason: error.message };
    if (error instanceof SupervisorNotFoundError || error instanceof TaskNotFoundError) return { kind: 'unknown', reason: error.message };
    if (error instanceof SupervisorNotRunningError) return { kind: 'retry', reason: error.message, delayMs: retryDelay(message) };
    if (error instanceof EventRefusedError) {
      // A supervisor stopping in this daemon (handed over, or shutting down) refuses too: it is not ours to settle.
      const id = error.supervisorId ?? supervisorId;
      if (!(isSupervisorState(error.state) && isTerminalState(error.state)) && id !== undefined && runtime.get(id) === undefined) {
        return { kind: 'retry', reason: error.message, delayMs: retryDelayMs };
      }
      return { kind: 'refused', reason: error.message };
    }
    if (error instanceof SaveFailedError || error instanceof DatabaseUnavailableError || error instanceof RuntimeStoppedError) {
      return { kind: 'retry', reason: error.message, delayMs: retryDelay(message) };
    }
    return null;
  }

  async function finish(which: keyof typeof counts, message: InboundMessage, outcome: Outcome): Promise<void> {
    const details = { subject: message.subject, msgId: message.msgId, deliveryCount: message.deliveryCount };
    switch (outcome.kind) {
      case 'applied':
        counts[which].applied += 1;
        await settle(message, 'ack');
        return;
      case 'duplicate':
        counts[which].duplicates += 1;
        logger.debug({ ...details, reason: outcome.reason }, 'duplicate message acked; nothing changed');
        await settle(message, 'ack');
        return;
      case 'refused':
        counts[which].refused += 1;
        logger.warn({ ...details, reason: outcome.reason }, 'message refused by the supervisor; acked, nothing changed');
        await settle(message, 'ack');
        return;
      case 'unknown':
        counts[which].unknown += 1;
        logger.warn({ ...details, reason: outcome.reason }, 'message for an unknown supervisor or task terminated');
        await settle(message, 'term', { reason: outcome.reason });
        return;
      case 'retry':
        counts[which].retried += 1;
        lastError = outcome.reason;
        logger.info({ ...details, reason: outcome.reason, retryInMs: outcome.delayMs }, 'message not applied now; it comes back later');
        await settle(message, 'nak', { delayMs: outcome.delayMs });
        return;
    }
  }

  async function apply(which: keyof typeof counts, message: InboundMessage, supervisorId: string | undefined, run: () => Promise<Outcome>): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await run();
    } catch (error) {
      const classified = classify(error, message, supervisorId);
      if (classified === null) {
        // Not a known "never" or "not now": retry, and let maxDeliver bound it.
        lastError = errorText(error);
        logger.error({ subject: message.subject, msgId: message.msgId, err: lastError }, 'unexpected error applying a message; it will be retried');
        outcome = { kind: 'retry', reason: lastError, delayMs: retryDelay(message) };
      } else {
        outcome = classified;
      }
    }
    await finish(which, message, outcome);
  }

  async function onAnswer(message: InboundMessage): Promise<void> {
    const parts = parseSupervisorSubjectParts(message.subject, prefix);
    const parsed = parseAnswerMessage(message.data);
    const problems = parsed.ok ? [] : [...parsed.problems];
    if (parts === null || parts.kind !== 'answers') problems.push(`subject ${message.subject} is not ${prefix}supervisors.<id>.answers`);
    else if (parsed.ok && parsed.value.supervisorId !== undefined && parsed.value.supervisorId !== parts.supervisorId) {
      problems.push(`supervisorId ${parsed.value.supervisorId} does not match the subject's ${parts.supervisorId}`);
    }
    if (!parsed.ok || parts === null || problems.length > 0) return terminateMalformed('answers', message, problems);
    const { questionId, answer } = parsed.value;
    await apply('answers', message, parts.supervisorId, async () => {
      await runtime.answerQuestion(parts.supervisorId, questionId, answer);
      return { kind: 'applied' };
    });
  }

  async function onTaskEvent(message: InboundMessage): Promise<void> {
    const taskId = parseTaskEventsSubject(message.subject, prefix);
    const parsed = parseTaskEventMessage(message.data);
    const problems = parsed.ok ? [] : [...parsed.problems];
    if (taskId === null) problems.push(`subject ${message.subject} is not ${prefix}tasks.<taskId>.events`);
    else if (parsed.ok && parsed.value.taskId !== taskId) problems.push(`taskId ${parsed.value.taskId} does not match the subject's ${taskId}`);
    if (!parsed.ok || taskId === null || problems.length > 0) return terminateMalformed('taskEvents', message, problems);
    const event = parsed.value;
    await apply('taskEvents', message, undefined, async () => {
      try {
        await runtime.reportTaskEvent(taskId, {
          type: event.type,
          ...(event.progress !== undefined ? { progress: event.progress } : {}),
          ...(event.result !== undefined ? { result: event.result } : {}),
          ...(event.error !== undefined ? { error: event.error } : {}),
        });
        return { kind: 'applied' };
      } catch (error) {
        // "Task not running (already completed)" is what a redelivered event looks like.
        if (error instanceof EventRefusedError) {
          const task = await getTask(runtime.database.db, taskId);
          if (task && (task.status === 'completed' || task.status === 'failed')) return { kind: 'duplicate', reason: error.message };
        }
        throw error;
      }
    });
  }

  const subscriptions: Subscription[] = [];
  try {
    subscriptions.push(
      await transport.subscribe(
        { ...subscribeDefaults, durable: options.answersDurable ?? ANSWERS_DURABLE, filterSubject: withPrefix(ALL_ANSWERS, prefix) },
        onAnswer,
      ),
    );
    subscriptions.push(
      await transport.subscribe(
        { ...subscribeDefaults, durable: options.taskEventsDurable ?? TASK_EVENTS_DURABLE, filterSubject: withPrefix(ALL_TASK_EVENTS, prefix) },
        onTaskEvent,
      ),
    );
  } catch (error) {
    await Promise.all(subscriptions.map((subscription) => subscription.stop()));
    throw error;
  }
  logger.debug({ prefix }, 'inbound consumers started');

  const consumers: InboundConsumers = {
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(subscriptions.map((subscription) => subscription.stop()));
    },
    stats: () => ({ answers: { ...counts.answers }, taskEvents: { ...counts.taskEvents }, lastError }),
  };
  runtime.hooks.onShutdown.push(() => consumers.stop());
  return consumers;
}
