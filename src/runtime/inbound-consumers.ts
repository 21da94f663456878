// Durable consumers that take answers and task events off the transport and record them in the inbox, acking only after
// that insert committed. Any daemon may receive any message: it records it for the supervisor's owner (woken by a
// database notification) and acks, so a message never bounces between daemons (see inbox-applier.ts for the owner side).
//
// Every message ends in exactly one of: recorded (ack), recorded already refused (ack: its supervisor is finished), a
// repeat of a recorded message id (ack), malformed, poison or unknown (term: it never could apply), or "not now" (nak
// with a delay: the database is down).

import { createHash } from 'node:crypto';
import { DatabaseUnavailableError, InvalidSupervisorDataError, errorText } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import { unstorableText } from '../domain/storable-text.js';
import { recordDeadLetters, type DeadLetterWrite } from '../persistence/ownership/dead-letters.js';
import { recordInbound, type InboundRecord } from '../persistence/ownership/inbox.js';
import { UnknownSenderError } from '../transport/errors.js';
import { parseAnswerMessage, parseSupervisorMessage, parseTaskEventMessage } from '../transport/messages.js';
import { ALL_ANSWERS, ALL_MESSAGES, ALL_TASK_EVENTS, parseSupervisorSubjectParts, parseTaskEventsSubject, withPrefix } from '../transport/subjects.js';
import { EPOCH_HEADER, type InboundMessage, type Subscription } from '../transport/transport.js';
import { crashPoint } from './crash-points.js';
import type { Logger } from './logger.js';
import type { RuntimeHost } from './runtime-host.js';

export const ANSWERS_DURABLE = 'runtime-answers';
export const TASK_EVENTS_DURABLE = 'runtime-task-events';
export const MESSAGES_DURABLE = 'runtime-messages';

export interface InboundConsumerOptions {
  /** Redeliver a message not settled within this time (default 30 s). */
  ackWaitMs?: number;
  /**
   * Deliveries before the transport gives a message up (default -1: never). Only a database outage makes a message
   * come back (everything else is recorded or terminated), and dropping an answer then would lose the human's answer.
   */
  maxDeliver?: number;
  /** First delay before a message that could not be recorded now comes back; grows with each delivery (default 1 s). */
  retryDelayMs?: number;
  /** Longest such delay (default 10 s). */
  maxRetryDelayMs?: number;
  /**
   * Failures of a message's recording with an error that is neither "database away" nor "content refused" (default
   * 20): then it is kept as a dead letter and terminated, so an unforeseen permanent error cannot hold it forever. A
   * database outage never counts against it: those deliveries are not counted, and the message waits as long as the
   * outage lasts. Counted per daemon, in memory (a restart starts again).
   */
  maxUnexpectedFailures?: number;
  answersDurable?: string;
  taskEventsDurable?: string;
  messagesDurable?: string;
}

export interface InboundCounts {
  /** Applied to the supervisor by its owner (this daemon). */
  applied: number;
  /** Already applied or recorded before (same message id, first answer wins, task already finished): nothing changed. */
  duplicates: number;
  /** Refused by the supervisor for another reason (not one of the choices, supervisor finished): nothing changed. */
  refused: number;
  /** Not JSON, wrong fields, a subject that names no supervisor or task, or text the database cannot store: terminated. */
  malformed: number;
  /** Names a supervisor or task that does not exist (as receiver, task, or a message's sender): terminated. */
  unknown: number;
  /** Could not be recorded now (database down): nak'd, comes back later. */
  retried: number;
  /** Failed with an unexpected error `maxUnexpectedFailures` times (outage deliveries not counted): dead-lettered and terminated. */
  gaveUp: number;
  /** Recorded in the inbox for the owner (this daemon or another) and acked. */
  recorded: number;
}

export interface InboundConsumerStats {
  answers: InboundCounts;
  taskEvents: InboundCounts;
  /** Messages from other supervisors. */
  messages: InboundCounts;
  lastError: string | null;
}

export interface InboundConsumers {
  /** Stop both consumers; unsettled messages stay with the durable consumers. */
  stop(): Promise<void>;
  stats(): InboundConsumerStats;
}

export type InboundKind = 'answers' | 'taskEvents' | 'messages';

export const emptyInboundCounts = (): InboundCounts => ({ applied: 0, duplicates: 0, refused: 0, malformed: 0, unknown: 0, retried: 0, gaveUp: 0, recorded: 0 });

export interface InboundConsumerParts {
  host: Pick<RuntimeHost, 'database' | 'transport' | 'logger' | 'daemonId' | 'ready'>;
  /** Counts shared with the inbox applier, which adds applied / duplicates / refused. */
  counts: Record<InboundKind, InboundCounts>;
  /** The owner's wake-up channel (database notification), null when the database cannot notify. */
  channel: string | null;
  /** Called after a message for a supervisor this daemon owns was recorded: apply it now. */
  onRecordedForSelf(): void;
}

/**
 * A NUL character or a lone UTF-16 surrogate in any text or key: Postgres text and jsonb hold neither, so such a
 * message could never be stored; it is poison, not "later".
 */
function containsUnstorableText(value: unknown): boolean {
  const bad = (text: string) => unstorableText(text) !== null;
  if (typeof value === 'string') return bad(value);
  if (Array.isArray(value)) return value.some(containsUnstorableText);
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([key, inner]) => bad(key) || containsUnstorableText(inner));
  return false;
}

/**
 * The inbox's dedup key. A publisher's id counts within its subject (JetStream too dedups only within a stream), so a
 * front end's answer "1" never hides a worker's task event "1" or another supervisor's answer "1". A message published
 * without an id gets a stable one from its subject and body, so its redeliveries are still recorded once (no subject
 * contains a newline, so the two forms never meet).
 */
function messageId(message: InboundMessage): string {
  if (message.msgId) return `${message.subject}\n${message.msgId}`;
  return `sha256:${createHash('sha256').update(message.subject).update('\n').update(message.data).digest('hex')}`;
}

function epochHeader(message: InboundMessage): number | null {
  const value = message.headers[EPOCH_HEADER];
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : null;
}

/** Dead letters per insert, and how many may wait to be written before the rest are only logged. */
const DEAD_LETTER_BATCH = 500;
const MAX_QUEUED_DEAD_LETTERS = 10_000;
/** Messages whose unexpected failures are remembered; past this the oldest entry is forgotten (it counts from 0 again). */
const MAX_TRACKED_FAILURES = 10_000;

export async function startInboundConsumers(parts: InboundConsumerParts, options: InboundConsumerOptions = {}): Promise<InboundConsumers> {
  const { host, counts } = parts;
  const transport = host.transport;
  if (!transport) {
    throw new Error('Inbound consumers need a transport: create the runtime with `transport` (createTransport({ natsUrl }) or createInProcessBus()).');
  }
  const prefix = transport.subjectPrefix;
  const logger: Logger = host.logger.child({ component: 'inbound-consumers' });
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 10_000;
  const maxUnexpectedFailures = options.maxUnexpectedFailures ?? 20;
  const subscribeDefaults = { ackWaitMs: options.ackWaitMs ?? 30_000, maxDeliver: options.maxDeliver ?? -1 };
  let lastError: string | null = null;
  let stopped = false;
  /** Unexpected failures per message (inbox key), not deliveries: the deliveries of a database outage do not count. */
  const unexpectedFailures = new Map<string, number>();
  function countFailure(key: string): number {
    const failures = (unexpectedFailures.get(key) ?? 0) + 1;
    unexpectedFailures.delete(key);
    if (unexpectedFailures.size >= MAX_TRACKED_FAILURES) {
      const oldest = unexpectedFailures.keys().next();
      if (!oldest.done) unexpectedFailures.delete(oldest.value);
    }
    unexpectedFailures.set(key, failures);
    return failures;
  }

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

  // Dead letters are written in the background, many per statement, so a flood of poison is terminated at the pace
  // of the transport and the valid messages behind it are not held up by one insert each.
  const letters: DeadLetterWrite[] = [];
  let writingLetters: Promise<void> | null = null;
  let lettersDropped = 0;
  async function writeLetters(): Promise<void> {
    while (letters.length > 0) {
      const batch = letters.splice(0, DEAD_LETTER_BATCH);
      try {
        await recordDeadLetters(host.database.db, batch);
      } catch (error) {
        logger.warn({ deadLetters: batch.length, err: errorText(error) }, 'could not record dead letters; the messages were terminated anyway');
      }
    }
    writingLetters = null;
  }
  /** Keep a terminated message for a person to inspect; a database that is away only costs the record, never the intake. */
  function deadLetter(message: InboundMessage, reason: string): void {
    if (letters.length >= MAX_QUEUED_DEAD_LETTERS) {
      lettersDropped += 1;
      if (lettersDropped === 1 || lettersDropped % 1_000 === 0) logger.warn({ dropped: lettersDropped }, 'dead letters arrive faster than they can be recorded; some are only logged');
      return;
    }
    letters.push({ subject: message.subject, msgId: message.msgId, data: message.data, reason, deliveryCount: message.deliveryCount, receivedBy: host.daemonId });
    writingLetters ??= writeLetters();
  }

  async function terminateMalformed(which: InboundKind, message: InboundMessage, problems: string[]): Promise<void> {
    counts[which].malformed += 1;
    const reason = `malformed: ${problems.join('; ')}`;
    logger.warn({ subject: message.subject, msgId: message.msgId, problems }, 'malformed message terminated (it will not be redelivered; see GET /dead-letters)');
    deadLetter(message, reason);
    await settle(message, 'term', { reason });
  }

  async function record(which: InboundKind, message: InboundMessage, inbound: Omit<InboundRecord, 'msgId' | 'epoch' | 'receivedBy'>): Promise<void> {
    const details = { subject: message.subject, msgId: message.msgId, deliveryCount: message.deliveryCount };
    const key = messageId(message);
    try {
      await host.ready();
      const result = await recordInbound(host.database.db, { ...inbound, msgId: key, epoch: epochHeader(message), receivedBy: host.daemonId }, parts.channel);
      unexpectedFailures.delete(key);
      if (result.outcome === 'unknown') {
        counts[which].unknown += 1;
        logger.warn({ ...details, supervisorId: inbound.supervisorId, taskId: inbound.taskId }, 'message for an unknown supervisor or task terminated (see GET /dead-letters)');
        deadLetter(message, inbound.taskId ? `unknown task ${inbound.taskId}` : `unknown supervisor ${inbound.supervisorId}`);
        await settle(message, 'term', { reason: 'unknown supervisor or task' });
        return;
      }
      if (result.outcome === 'unknownSender') {
        // Nothing recorded: the receiver takes in nothing from a supervisor that does not exist.
        const refused = new UnknownSenderError(message.subject, result.senderId, result.supervisorId);
        counts[which].unknown += 1;
        logger.warn({ ...details, supervisorId: result.supervisorId, from: result.senderId, err: refused.message }, 'message from an unknown sender terminated (see GET /dead-letters)');
        deadLetter(message, `unknown sender ${result.senderId}: no stored supervisor sent it`);
        await settle(message, 'term', { reason: 'unknown sender' });
        return;
      }
      if (result.outcome === 'duplicate') {
        counts[which].duplicates += 1;
        logger.debug(details, 'message already recorded; acked, nothing changed');
        await settle(message, 'ack');
        return;
      }
      counts[which].recorded += 1;
      // Recorded (its insert committed), not acked: the transport delivers it again.
      crashPoint('inbox.after-record');
      if (result.outcome === 'refused') {
        // Finished supervisor: stamped refused as it was recorded (what its owner would do), nobody to wake.
        counts[which].refused += 1;
        logger.info({ ...details, supervisorId: result.supervisorId, reason: result.detail }, 'message for a finished supervisor recorded as refused; acked, nothing changed');
        await settle(message, 'ack');
        return;
      }
      await settle(message, 'ack');
      if (result.owner === host.daemonId) parts.onRecordedForSelf();
    } catch (error) {
      lastError = errorText(error);
      if (error instanceof InvalidSupervisorDataError) {
        // The database refused the content itself: it never will take it, however often it comes back.
        unexpectedFailures.delete(key);
        return terminateMalformed(which, message, [`the database refused it: ${lastError}`]);
      }
      const unexpected = !(error instanceof DatabaseUnavailableError);
      const failures = unexpected ? countFailure(key) : (unexpectedFailures.get(key) ?? 0);
      if (unexpected && failures >= maxUnexpectedFailures) {
        unexpectedFailures.delete(key);
        counts[which].gaveUp += 1;
        const reason = `gave up after ${failures} unexpected failures: ${lastError}`;
        logger.error({ ...details, err: lastError }, 'message failed with an unexpected error maxUnexpectedFailures times; terminated and kept as a dead letter (see GET /dead-letters)');
        deadLetter(message, reason);
        await settle(message, 'term', { reason });
        return;
      }
      const delayMs = retryDelay(message);
      counts[which].retried += 1;
      if (!unexpected) logger.info({ ...details, reason: lastError, retryInMs: delayMs }, 'message not recorded now; it comes back later');
      else logger.error({ ...details, err: lastError, retryInMs: delayMs, failures, failuresLeft: maxUnexpectedFailures - failures }, 'unexpected error recording a message; it will be retried');
      await settle(message, 'nak', { delayMs });
    }
  }

  /**
   * The supervisor a `supervisors.<id>.<kind>` subject names (null when it names none, or no UUID), with what is wrong;
   * an id the body gives as well (`named`) must be the same one. A UUID is the same in either case: the subject may
   * name it in capitals, the body copy it from elsewhere.
   */
  function subjectSupervisor(subject: string, kind: 'answers' | 'messages', named: { field: string; id: string } | undefined): { supervisorId: string | null; problems: string[] } {
    const parts = parseSupervisorSubjectParts(subject, prefix);
    if (parts === null || parts.kind !== kind) return { supervisorId: null, problems: [`subject ${subject} is not ${prefix}supervisors.<id>.${kind}`] };
    if (!isUuid(parts.supervisorId)) return { supervisorId: null, problems: [`subject names supervisor "${parts.supervisorId}", which is not a UUID`] };
    if (named && named.id.toLowerCase() !== parts.supervisorId.toLowerCase()) {
      return { supervisorId: parts.supervisorId, problems: [`${named.field} ${named.id} does not match the subject's ${parts.supervisorId}`] };
    }
    return { supervisorId: parts.supervisorId, problems: [] };
  }

  async function onAnswer(message: InboundMessage): Promise<void> {
    const parsed = parseAnswerMessage(message.data);
    const named = parsed.ok && parsed.value.supervisorId !== undefined ? { field: 'supervisorId', id: parsed.value.supervisorId } : undefined;
    const { supervisorId, problems } = subjectSupervisor(message.subject, 'answers', named);
    if (!parsed.ok) problems.unshift(...parsed.problems);
    if (parsed.ok && containsUnstorableText(parsed.value)) problems.push('a text field contains a NUL character (U+0000) or a lone UTF-16 surrogate, which cannot be stored');
    if (!parsed.ok || supervisorId === null || problems.length > 0) return terminateMalformed('answers', message, problems);
    const { questionId, answer } = parsed.value;
    await record('answers', message, { kind: 'answer', supervisorId, payload: { questionId, answer } });
  }

  async function onTaskEvent(message: InboundMessage): Promise<void> {
    const taskId = parseTaskEventsSubject(message.subject, prefix);
    const parsed = parseTaskEventMessage(message.data);
    const problems = parsed.ok ? [] : [...parsed.problems];
    if (taskId === null) problems.push(`subject ${message.subject} is not ${prefix}tasks.<taskId>.events`);
    else if (parsed.ok && parsed.value.taskId !== taskId) problems.push(`taskId ${parsed.value.taskId} does not match the subject's ${taskId}`);
    if (parsed.ok && containsUnstorableText(parsed.value)) problems.push('a text field contains a NUL character (U+0000) or a lone UTF-16 surrogate, which cannot be stored');
    if (!parsed.ok || taskId === null || problems.length > 0) return terminateMalformed('taskEvents', message, problems);
    const event = parsed.value;
    await record('taskEvents', message, {
      kind: 'task_event',
      taskId,
      payload: {
        taskId,
        type: event.type,
        ...(event.progress !== undefined ? { progress: event.progress } : {}),
        ...(event.result !== undefined ? { result: event.result } : {}),
        ...(event.error !== undefined ? { error: event.error } : {}),
      },
    });
  }

  async function onMessage(message: InboundMessage): Promise<void> {
    const parsed = parseSupervisorMessage(message.data);
    const { supervisorId, problems } = subjectSupervisor(message.subject, 'messages', parsed.ok ? { field: 'to', id: parsed.value.to } : undefined);
    if (!parsed.ok) problems.unshift(...parsed.problems);
    if (parsed.ok && !isUuid(parsed.value.from)) problems.push(`from "${parsed.value.from}" is not a UUID`);
    // runtime.sendMessage refuses a message to oneself; a raw publish of one is refused the same.
    else if (parsed.ok && parsed.value.from.toLowerCase() === parsed.value.to.toLowerCase()) problems.push(`from and to are the same supervisor (${parsed.value.to}): a supervisor does not send messages to itself`);
    if (parsed.ok && containsUnstorableText(parsed.value)) problems.push('a text field contains a NUL character (U+0000) or a lone UTF-16 surrogate, which cannot be stored');
    if (!parsed.ok || supervisorId === null || problems.length > 0) return terminateMalformed('messages', message, problems);
    const { from, messageId, body, sentAt } = parsed.value;
    await record('messages', message, { kind: 'message', supervisorId, senderId: from.toLowerCase(), payload: { from: from.toLowerCase(), messageId, body, sentAt } });
  }

  const subscriptions: Subscription[] = [];
  try {
    subscriptions.push(
      await transport.subscribe({ ...subscribeDefaults, durable: options.answersDurable ?? ANSWERS_DURABLE, filterSubject: withPrefix(ALL_ANSWERS, prefix) }, onAnswer),
    );
    subscriptions.push(
      await transport.subscribe(
        { ...subscribeDefaults, durable: options.taskEventsDurable ?? TASK_EVENTS_DURABLE, filterSubject: withPrefix(ALL_TASK_EVENTS, prefix) },
        onTaskEvent,
      ),
    );
    subscriptions.push(
      await transport.subscribe({ ...subscribeDefaults, durable: options.messagesDurable ?? MESSAGES_DURABLE, filterSubject: withPrefix(ALL_MESSAGES, prefix) }, onMessage),
    );
  } catch (error) {
    await Promise.all(subscriptions.map((subscription) => subscription.stop()));
    throw error;
  }
  logger.debug({ prefix }, 'inbound consumers started');

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(subscriptions.map((subscription) => subscription.stop()));
      await writingLetters;
    },
    stats: () => ({ answers: { ...counts.answers }, taskEvents: { ...counts.taskEvents }, messages: { ...counts.messages }, lastError }),
  };
}
