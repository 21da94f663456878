// The embedded transport: JetStream's semantics (streams, durable consumers, msgId dedup, ack/nak/term, redelivery) in one process's memory.
//
// Nothing survives the process; it exists so a single-process runtime needs no server and so the
// contract suite can pin down the behaviour the NATS transport must match.

import { TransportClosedError } from './errors.js';
import { settleAfterHandlerFailure } from './handler-failure.js';
import { decodeJson } from './messages.js';
import {
  assertFilterSubject,
  assertPublishSubject,
  normalizeSubjectPrefix,
  subjectMatches,
  type StreamKey,
} from './subjects.js';
import {
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_MAX_DELIVER,
  type ConsumerInfo,
  type InboundMessage,
  type MessageHandler,
  type PublishOptions,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportHealth,
} from './transport.js';
import { stderrTransportLogger, type TransportLogger } from './transport-logger.js';

export interface InProcessBusOptions {
  /** Subjects must start with it, as on NATS (one bus is private to its process anyway). */
  subjectPrefix?: string;
  /** A msgId seen again within this window is a duplicate. Default 2 minutes, like the NATS streams. */
  dedupWindowMs?: number;
  /** Messages older than this are dropped from the log. Default 7 days, like the NATS streams. */
  maxAgeMs?: number;
  logger?: TransportLogger;
  /** Clock for dedup and retention; tests pass a fake one. */
  now?: () => number;
}

export const DEFAULT_DEDUP_WINDOW_MS = 2 * 60_000;
export const DEFAULT_MAX_AGE_MS = 7 * 24 * 3_600_000;

interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  msgId: string | null;
  headers: Readonly<Record<string, string>>;
  storedAt: number;
}

interface PendingDelivery {
  deliveryCount: number;
  /** When the message is due again if not acked (ack wait or nak delay). */
  dueAt: number;
}

interface ConsumerState {
  durable: string;
  filter: string;
  ackWaitMs: number;
  maxDeliver: number;
  /** The lowest stream sequence not yet delivered for the first time. */
  nextSeq: number;
  pending: Map<number, PendingDelivery>;
  wakers: Set<() => void>;
}

interface StreamState {
  /** messages[i] has seq firstSeq + i. */
  messages: StoredMessage[];
  firstSeq: number;
  lastSeq: number;
  dedup: Map<string, { seq: number; at: number }>;
  consumers: Map<string, ConsumerState>;
}

export function createInProcessBus(options: InProcessBusOptions = {}): Transport {
  const now = options.now ?? Date.now;
  const dedupWindowMs = options.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const logger = options.logger ?? stderrTransportLogger;
  const subjectPrefix = normalizeSubjectPrefix(options.subjectPrefix);
  const streams: Record<StreamKey, StreamState> = { supervisors: newStream(), tasks: newStream() };
  const active = new Set<{ stop(): Promise<void> }>();
  let closed = false;

  function assertOpen(operation: string): void {
    if (closed) throw new TransportClosedError(operation);
  }

  function trim(stream: StreamState): void {
    const cutoff = now() - maxAgeMs;
    let drop = 0;
    while (drop < stream.messages.length && stream.messages[drop]!.storedAt < cutoff) drop++;
    if (drop > 0) {
      stream.messages.splice(0, drop);
      stream.firstSeq += drop;
    }
    const dedupCutoff = now() - dedupWindowMs;
    for (const [id, entry] of stream.dedup) {
      if (entry.at >= dedupCutoff) break; // insertion order is time order
      stream.dedup.delete(id);
    }
  }

  function wakeAll(stream: StreamState): void {
    for (const consumer of stream.consumers.values()) wake(consumer);
  }

  function wake(consumer: ConsumerState): void {
    for (const waker of [...consumer.wakers]) waker();
  }

  /** Due redeliveries first (lowest sequence), then the next new message matching the filter. */
  function claimNext(stream: StreamState, consumer: ConsumerState): { message: StoredMessage; deliveryCount: number } | 'none' {
    const time = now();
    for (const seq of [...consumer.pending.keys()].sort((a, b) => a - b)) {
      const entry = consumer.pending.get(seq)!;
      if (entry.dueAt > time) continue;
      const message = stream.messages[seq - stream.firstSeq];
      if (message === undefined) {
        consumer.pending.delete(seq); // aged out of the log
        continue;
      }
      if (consumer.maxDeliver > 0 && entry.deliveryCount >= consumer.maxDeliver) {
        consumer.pending.delete(seq);
        logger.warn(
          { durable: consumer.durable, subject: message.subject, msgId: message.msgId, deliveries: entry.deliveryCount },
          'message dropped after maxDeliver deliveries without an ack',
        );
        continue;
      }
      entry.deliveryCount += 1;
      entry.dueAt = time + consumer.ackWaitMs;
      return { message, deliveryCount: entry.deliveryCount };
    }
    consumer.nextSeq = Math.max(consumer.nextSeq, stream.firstSeq);
    while (consumer.nextSeq <= stream.lastSeq) {
      const message = stream.messages[consumer.nextSeq - stream.firstSeq]!;
      consumer.nextSeq += 1;
      if (!subjectMatches(consumer.filter, message.subject)) continue;
      consumer.pending.set(message.seq, { deliveryCount: 1, dueAt: time + consumer.ackWaitMs });
      return { message, deliveryCount: 1 };
    }
    return 'none';
  }

  function nextDueAt(consumer: ConsumerState): number | null {
    let earliest: number | null = null;
    for (const entry of consumer.pending.values()) {
      if (earliest === null || entry.dueAt < earliest) earliest = entry.dueAt;
    }
    return earliest;
  }

  function inbound(consumer: ConsumerState, message: StoredMessage, deliveryCount: number): InboundMessage {
    let settled = false;
    const settle = (operation: string, apply: (entry: PendingDelivery | undefined) => void): Promise<void> => {
      if (closed) return Promise.reject(new TransportClosedError(operation));
      if (settled) return Promise.resolve();
      settled = true;
      apply(consumer.pending.get(message.seq));
      wake(consumer);
      return Promise.resolve();
    };
    return {
      subject: message.subject,
      msgId: message.msgId,
      headers: message.headers,
      data: message.data.slice(), // each delivery its own copy, as from NATS
      deliveryCount,
      json: () => decodeJson(message.data, message.subject),
      ack: () => settle('ack a message', () => consumer.pending.delete(message.seq)),
      nak: (delayMs = 0) =>
        settle('nak a message', (entry) => {
          if (entry) entry.dueAt = now() + Math.max(0, delayMs);
        }),
      term: (reason: string) =>
        settle('term a message', () => {
          consumer.pending.delete(message.seq);
          logger.info({ durable: consumer.durable, subject: message.subject, msgId: message.msgId, reason }, 'message terminated');
        }),
    };
  }

  return {
    kind: 'in-process',
    subjectPrefix,

    async start() {
      assertOpen('start the transport');
    },

    async publish(subject: string, data: Uint8Array, publishOptions: PublishOptions): Promise<PublishResult> {
      assertOpen(`publish to ${subject}`);
      const stream = streams[assertPublishSubject(subject, subjectPrefix)];
      trim(stream);
      const msgId = publishOptions.msgId;
      const seen = stream.dedup.get(msgId);
      if (seen) return { duplicate: true, seq: seen.seq };
      const seq = stream.lastSeq + 1;
      const storedAt = now();
      // Copy: the publisher may reuse its buffer, a stored message must not change.
      stream.messages.push({ seq, subject, data: data.slice(), msgId, headers: { ...(publishOptions.headers ?? {}) }, storedAt });
      stream.lastSeq = seq;
      stream.dedup.set(msgId, { seq, at: storedAt });
      wakeAll(stream);
      return { duplicate: false, seq };
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: MessageHandler): Promise<Subscription> {
      assertOpen(`subscribe ${subscribeOptions.durable}`);
      const stream = streams[assertFilterSubject(subscribeOptions.filterSubject, subjectPrefix)];
      const filter = subscribeOptions.filterSubject;
      const ackWaitMs = subscribeOptions.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
      const maxDeliver = subscribeOptions.maxDeliver ?? DEFAULT_MAX_DELIVER;
      let consumer = stream.consumers.get(subscribeOptions.durable);
      if (consumer) {
        // Like a consumer update on the server: new settings, same position.
        Object.assign(consumer, { filter, ackWaitMs, maxDeliver });
      } else {
        consumer = {
          durable: subscribeOptions.durable,
          filter,
          ackWaitMs,
          maxDeliver,
          nextSeq: stream.firstSeq,
          pending: new Map(),
          wakers: new Set(),
        };
        stream.consumers.set(subscribeOptions.durable, consumer);
      }
      const state = consumer;

      let stopped = false;
      let wakeThis: () => void = () => {};
      const waker = () => wakeThis();
      state.wakers.add(waker);

      const loop = (async () => {
        while (!stopped) {
          trim(stream);
          const next = claimNext(stream, state);
          if (next === 'none') {
            const dueAt = nextDueAt(state);
            await new Promise<void>((resolve) => {
              const timer = dueAt === null ? undefined : setTimeout(resolve, Math.max(0, dueAt - now()) + 1);
              wakeThis = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            continue;
          }
          const message = inbound(state, next.message, next.deliveryCount);
          try {
            await handler(message);
          } catch (error) {
            await settleAfterHandlerFailure(logger, state, message, error);
          }
        }
      })();

      const subscription = {
        async stop() {
          if (stopped) return loop;
          stopped = true;
          state.wakers.delete(waker);
          wakeThis();
          active.delete(subscription);
          await loop;
        },
      };
      active.add(subscription);
      return subscription;
    },

    async consumerInfo(durable: string, filterSubject: string): Promise<ConsumerInfo> {
      assertOpen(`read consumer ${durable}`);
      const stream = streams[assertFilterSubject(filterSubject, subjectPrefix)];
      trim(stream);
      const consumer = stream.consumers.get(durable);
      const from = Math.max(consumer?.nextSeq ?? stream.firstSeq, stream.firstSeq);
      let pending = 0;
      for (let seq = from; seq <= stream.lastSeq; seq++) {
        if (subjectMatches(filterSubject, stream.messages[seq - stream.firstSeq]!.subject)) pending++;
      }
      return { exists: consumer !== undefined, pending, ackPending: consumer?.pending.size ?? 0, waiting: consumer?.wakers.size ?? 0 };
    },

    async health(): Promise<TransportHealth> {
      return closed
        ? { ok: false, kind: 'in-process', detail: 'closed' }
        : { ok: true, kind: 'in-process', detail: 'in-process bus (messages live in this process only)' };
    },

    async close() {
      if (closed) return;
      await Promise.all([...active].map((s) => s.stop()));
      closed = true;
    },
  };
}

function newStream(): StreamState {
  return { messages: [], firstSeq: 1, lastSeq: 0, dedup: new Map(), consumers: new Map() };
}
