// The NATS JetStream transport: two file-backed streams (supervisors.>, tasks.>) with msgId dedup, durable pull consumers with explicit ack.
//
// Connecting fails fast (an unreachable server at start is a configuration error); once connected
// the client reconnects forever and consumers resume by themselves.

import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos, type NatsConnection } from '@nats-io/transport-node';
import { TransportClosedError, TransportNotStartedError, TransportUnavailableError } from './errors.js';
import { settleAfterHandlerFailure } from './handler-failure.js';
import { decodeJson } from './messages.js';
import {
  assertFilterSubject,
  assertPublishSubject,
  normalizeSubjectPrefix,
  streamNames,
  streamSubject,
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

export interface NatsTransportOptions {
  /** One URL or a comma-separated list (`nats://127.0.0.1:4222`). */
  servers: string;
  /** Isolates subjects and stream names (`t123.` → `t123.supervisors.…`, stream `SR_T123_SUPERVISORS`). */
  subjectPrefix?: string;
  /** Connection name shown by `nats server report connections`. */
  name?: string;
  logger?: TransportLogger;
  /** How long a publish waits for the stream's ack before failing. Default 3 s. */
  publishTimeoutMs?: number;
  /** How long start() waits for the first connection. Default 3 s. */
  connectTimeoutMs?: number;
  /** How long health() waits for JetStream to answer. Default 1.5 s. */
  healthTimeoutMs?: number;
  /** Pause between reconnect attempts. Default 500 ms. */
  reconnectTimeWaitMs?: number;
}

/** JetStream API error "stream name already in use with a different configuration" (not in JetStreamApiCodes). */
const STREAM_NAME_IN_USE = 10058;
const DEDUP_WINDOW_MS = 2 * 60_000;
const MAX_AGE_MS = 7 * 24 * 3_600_000;
/** Messages pulled ahead of the handler; small, so buffered messages never sit near their ack wait. */
const CONSUME_BATCH = 10;
/** Pause before re-creating a consume iterator that ended or failed. */
const RESUBSCRIBE_DELAY_MS = 500;

interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export function createNatsTransport(options: NatsTransportOptions): Transport {
  const servers = options.servers;
  const subjectPrefix = normalizeSubjectPrefix(options.subjectPrefix);
  const names = streamNames(subjectPrefix);
  const logger = options.logger ?? stderrTransportLogger;
  const publishTimeoutMs = options.publishTimeoutMs ?? 3_000;
  const healthTimeoutMs = options.healthTimeoutMs ?? 1_500;

  let connection: Promise<Connected> | null = null;
  let current: Connected | null = null;
  let disconnected = false;
  let closing = false;
  const subscriptions = new Set<{ stop(): Promise<void> }>();

  function unavailable(operation: string, cause: unknown): TransportUnavailableError {
    return new TransportUnavailableError(operation, servers, cause);
  }

  function connected(operation: string): Connected {
    if (closing) throw new TransportClosedError(operation);
    if (current === null) throw new TransportNotStartedError(operation);
    return current;
  }

  async function open(): Promise<Connected> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: servers.split(',').map((s) => s.trim()),
        name: options.name ?? 'supervisor-runtime',
        timeout: options.connectTimeoutMs ?? 3_000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectTimeWaitMs ?? 500,
        // Fail fast at start: only an established connection reconnects forever.
        waitOnFirstConnect: false,
      });
    } catch (error) {
      throw unavailable('connect', error);
    }
    try {
      const jsm = await jetstreamManager(nc);
      const result = { nc, js: jetstream(nc), jsm };
      watchStatus(nc);
      return result;
    } catch (error) {
      await nc.close().catch(() => {});
      throw unavailable('connect (JetStream check)', error);
    }
  }

  function watchStatus(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          disconnected = true;
          logger.warn({ servers }, 'disconnected from NATS; reconnecting');
        } else if (status.type === 'reconnect') {
          disconnected = false;
          logger.info({ servers }, 'reconnected to NATS');
        }
      }
    })();
  }

  async function ensureStream(jsm: JetStreamManager, key: StreamKey): Promise<void> {
    const config: Partial<StreamConfig> & { name: string } = {
      name: names[key],
      subjects: [streamSubject(key, subjectPrefix)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(MAX_AGE_MS),
      duplicate_window: nanos(DEDUP_WINDOW_MS),
      num_replicas: 1,
    };
    try {
      await jsm.streams.add(config);
    } catch (error) {
      // Re-adding an identical stream succeeds; a changed one must be updated instead.
      if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
      await jsm.streams.update(config.name, config);
    }
  }

  async function ensureStreams(jsm: JetStreamManager): Promise<void> {
    await ensureStream(jsm, 'supervisors');
    await ensureStream(jsm, 'tasks');
  }

  function toInbound(m: JsMsg, consumer: { durable: string }): InboundMessage {
    let settled = false;
    const subject = m.subject;
    const settle = async (operation: string, apply: () => Promise<unknown> | void): Promise<void> => {
      if (settled) return;
      settled = true;
      try {
        await apply();
      } catch (error) {
        if (closing || current?.nc.isClosed()) throw new TransportClosedError(operation);
        throw unavailable(operation, error);
      }
    };
    const received: Record<string, string> = {};
    for (const key of m.headers?.keys() ?? []) received[key] = m.headers?.get(key) ?? '';
    return {
      subject,
      msgId: m.headers?.get('Nats-Msg-Id') || null,
      headers: received,
      data: m.data,
      deliveryCount: m.info.deliveryCount,
      json: () => decodeJson(m.data, subject),
      // ackAck waits for the server, so a resolved ack() is never redelivered.
      ack: () => settle('ack a message', () => m.ackAck({ timeout: publishTimeoutMs })),
      nak: (delayMs?: number) => settle('nak a message', () => m.nak(delayMs)),
      term: (reason: string) =>
        settle('term a message', () => {
          // nats-server 2.9 does not understand "+TERM <reason>" and redelivers; send a bare +TERM and log the reason here.
          m.term();
          logger.info({ durable: consumer.durable, subject, reason }, 'message terminated');
        }),
    };
  }

  const transport: Transport = {
    kind: 'nats',
    subjectPrefix,

    async start() {
      if (closing) throw new TransportClosedError('start the transport');
      if (connection === null) {
        connection = open();
        connection.catch(() => {
          connection = null; // a later start() tries again
        });
      }
      const c = await connection;
      try {
        await ensureStreams(c.jsm);
      } catch (error) {
        throw unavailable(`create streams ${names.supervisors} and ${names.tasks}`, error);
      }
      current = c;
    },

    async publish(subject: string, data: Uint8Array, publishOptions: PublishOptions): Promise<PublishResult> {
      const operation = `publish to ${subject}`;
      const { js, jsm } = connected(operation);
      assertPublishSubject(subject, subjectPrefix);
      // While disconnected nats.js would buffer the request and only time out; fail at once instead.
      if (disconnected) throw unavailable(operation, new Error('disconnected, reconnecting in the background'));
      const send = async () => {
        const extra = publishOptions.headers;
        let h: ReturnType<typeof natsHeaders> | undefined;
        if (extra && Object.keys(extra).length > 0) {
          h = natsHeaders();
          for (const [key, value] of Object.entries(extra)) h.set(key, value);
        }
        const ack = await js.publish(subject, data, { msgID: publishOptions.msgId, timeout: publishTimeoutMs, ...(h ? { headers: h } : {}) });
        return { duplicate: ack.duplicate, seq: ack.seq };
      };
      try {
        try {
          return await send();
        } catch (error) {
          // No stream answered: the server came back without its store. Re-create the streams once and retry.
          if (!(error instanceof Error && error.name === 'JetStreamNotEnabled')) throw error;
          logger.error({ servers, subject }, 'no stream captures this subject (server lost its JetStream store?); re-creating the streams');
          await ensureStreams(jsm);
          return await send();
        }
      } catch (error) {
        if (closing) throw new TransportClosedError(operation);
        throw unavailable(operation, error);
      }
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: MessageHandler): Promise<Subscription> {
      const { durable, filterSubject } = subscribeOptions;
      const operation = `subscribe ${durable} to ${filterSubject}`;
      const { js, jsm } = connected(operation);
      const streamKey = assertFilterSubject(filterSubject, subjectPrefix);
      const stream = names[streamKey];
      const maxDeliver = subscribeOptions.maxDeliver ?? DEFAULT_MAX_DELIVER;
      const config = {
        durable_name: durable,
        filter_subject: filterSubject,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(subscribeOptions.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
        max_deliver: maxDeliver,
        deliver_policy: DeliverPolicy.All,
      };
      const ensureConsumer = async (): Promise<void> => {
        try {
          // Create-or-update: nats-server 2.9 updates an existing durable when only editable fields differ.
          await jsm.consumers.add(stream, config);
        } catch (error) {
          try {
            await jsm.consumers.update(stream, durable, {
              filter_subject: config.filter_subject,
              ack_wait: config.ack_wait,
              max_deliver: config.max_deliver,
            });
          } catch {
            throw error;
          }
        }
      };
      try {
        await ensureConsumer();
      } catch (error) {
        throw unavailable(operation, error);
      }

      const consumerInfo = { durable, maxDeliver };
      let stopped = false;
      let messages: ConsumerMessages | null = null;
      let wakeSleep: () => void = () => {};

      const loop = (async () => {
        let failed = false;
        while (!stopped) {
          try {
            if (failed) {
              // The iterator ended: the consumer (or the whole store) may be gone. Both calls are idempotent.
              await ensureStream(jsm, streamKey);
              await ensureConsumer();
            }
            const consumer = await js.consumers.get(stream, durable);
            // abort_on_missing_resource: end the iterator when the consumer vanishes, so it is re-created above.
            messages = await consumer.consume({ max_messages: CONSUME_BATCH, abort_on_missing_resource: true });
            if (stopped) messages.stop();
            for await (const m of messages) {
              if (stopped) {
                // Pulled but never handled: hand it straight back for the next subscriber.
                m.nak();
                continue;
              }
              const message = toInbound(m, consumerInfo);
              try {
                await handler(message);
              } catch (error) {
                await settleAfterHandlerFailure(logger, consumerInfo, message, error);
              }
            }
          } catch (error) {
            if (!stopped) logger.warn({ durable, stream, error: String(error) }, 'consumer stopped; re-creating it');
          }
          failed = true;
          messages = null;
          if (current?.nc.isClosed()) break;
          if (!stopped) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, RESUBSCRIBE_DELAY_MS);
              wakeSleep = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        }
      })();

      const subscription = {
        async stop() {
          if (!stopped) {
            stopped = true;
            subscriptions.delete(subscription);
            (messages as ConsumerMessages | null)?.stop();
            wakeSleep();
          }
          await loop;
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async consumerInfo(durable: string, filterSubject: string): Promise<ConsumerInfo> {
      const operation = `read consumer ${durable}`;
      const { jsm } = connected(operation);
      const stream = names[assertFilterSubject(filterSubject, subjectPrefix)];
      try {
        const info = await jsm.consumers.info(stream, durable);
        return { exists: true, pending: info.num_pending, ackPending: info.num_ack_pending, waiting: info.num_waiting };
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) {
          if (closing) throw new TransportClosedError(operation);
          throw unavailable(operation, error);
        }
      }
      try {
        // No consumer yet: everything the stream holds under the filter waits for the first subscriber.
        const info = await jsm.streams.info(stream, { subjects_filter: filterSubject });
        const pending = Object.values(info.state.subjects ?? {}).reduce((sum, count) => sum + count, 0);
        return { exists: false, pending, ackPending: 0, waiting: 0 };
      } catch (error) {
        if (closing) throw new TransportClosedError(operation);
        throw unavailable(operation, error);
      }
    },

    async health(): Promise<TransportHealth> {
      const unhealthy = (detail: string): TransportHealth => ({ ok: false, kind: 'nats', detail });
      if (closing) return unhealthy('closed');
      if (current === null) return unhealthy('not started');
      if (current.nc.isClosed()) return unhealthy(`connection to ${servers} closed`);
      if (disconnected) return unhealthy(`disconnected from ${servers}; reconnecting`);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          current.jsm.getAccountInfo(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`JetStream did not answer within ${healthTimeoutMs} ms`)), healthTimeoutMs);
          }),
        ]);
        return { ok: true, kind: 'nats', detail: `connected to ${current.nc.getServer()}, JetStream answering` };
      } catch (error) {
        return unhealthy(`JetStream at ${servers} not answering: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    },

    async close() {
      if (closing) return;
      closing = true;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      const c = current ?? (await connection?.catch(() => null)) ?? null;
      if (c === null || c.nc.isClosed()) return;
      // drain() flushes pending acks; it cannot finish while disconnected, so close() after a while.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        c.nc.drain().catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2_000);
        }),
      ]);
      clearTimeout(timer);
      if (!c.nc.isClosed()) await c.nc.close().catch(() => {});
    },
  };
  return transport;
}
