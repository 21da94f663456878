// The transport contract: publish with a message id, durable subscribe with explicit ack; NATS JetStream and the in-process bus both implement it.

/** One received message. Exactly one of ack / nak / term must be called; later calls are ignored. */
export interface InboundMessage {
  /** The full subject, prefix included (parse it with parseSupervisorSubject(subject, prefix)). */
  readonly subject: string;
  /** The publisher's message id (the outbox row id for our own messages), when it gave one. */
  readonly msgId: string | null;
  readonly data: Uint8Array;
  /** Headers the publisher set (e.g. Supervisor-Epoch on our own messages); empty when none. */
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on first delivery, 2+ on redelivery. */
  readonly deliveryCount: number;
  /** Parse `data` as JSON; throws MalformedMessageError (never a SyntaxError) when it is not JSON. */
  json(): unknown;
  /** Processed: never deliver again. */
  ack(): Promise<void>;
  /** Not processed now: deliver again after `delayMs`. */
  nak(delayMs?: number): Promise<void>;
  /** Never processable (malformed): never deliver again. */
  term(reason: string): Promise<void>;
}

export interface PublishOptions {
  /** Deduplication id: a second publish with the same id inside the window is dropped. */
  msgId: string;
  /** Extra headers carried with the message (names are case-sensitive ASCII tokens). */
  headers?: Readonly<Record<string, string>>;
}

/** Header on outbound supervisor messages: the owner's fencing epoch when the message was written. */
export const EPOCH_HEADER = 'Supervisor-Epoch';
/** Header on outbound supervisor messages: the daemon that owned the supervisor when the message was written. */
export const OWNER_HEADER = 'Supervisor-Owner';

export interface PublishResult {
  /** True when the server (or bus) had already seen this msgId and dropped the message. */
  duplicate: boolean;
  /** Stream sequence of the stored message. */
  seq: number;
}

export interface SubscribeOptions {
  /** Durable consumer name: messages published while nobody listens are kept for it. */
  durable: string;
  /** One subject filter, NATS wildcards allowed (`supervisors.*.answers`). nats-server 2.9 allows one per consumer. */
  filterSubject: string;
  /** Redeliver a message not acked within this time. Default 30 s. */
  ackWaitMs?: number;
  /** Give up on a message after this many deliveries (then it is dropped with a warning); -1 never gives up. Default 20. */
  maxDeliver?: number;
}

export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_MAX_DELIVER = 20;

export type MessageHandler = (message: InboundMessage) => Promise<void>;

export interface Subscription {
  /**
   * Stop receiving; unacked messages stay with the durable consumer for the next subscriber.
   * Resolves once the handler call in progress has returned, so do not await it inside that handler.
   */
  stop(): Promise<void>;
}

export interface TransportHealth {
  ok: boolean;
  kind: TransportKind;
  detail: string;
}

export interface ConsumerInfo {
  /** False while no subscriber has ever created the durable consumer (then `pending` counts every matching message). */
  exists: boolean;
  /** Matching messages not yet delivered to the consumer. */
  pending: number;
  /** Delivered and not yet acknowledged (being worked on). */
  ackPending: number;
  /** Subscribers asking for more right now: pull requests waiting on NATS, subscribed handlers in process. */
  waiting: number;
}

export type TransportKind = 'nats' | 'in-process';

export interface Transport {
  readonly kind: TransportKind;
  /**
   * '' or ending in '.'. Every subject and filter passed to publish and subscribe must start with it
   * (build them with src/transport/subjects.ts and this prefix); InboundMessage.subject includes it.
   * It also names the streams, so transports with different prefixes share a server without meeting.
   */
  readonly subjectPrefix: string;
  /** Create or update streams and consumers idempotently. Safe to call more than once. */
  start(): Promise<void>;
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishResult>;
  subscribe(options: SubscribeOptions, handler: MessageHandler): Promise<Subscription>;
  health(): Promise<TransportHealth>;
  /** Where a durable consumer stands: how much waits for it and whether anyone is taking it (e.g. task workers). */
  consumerInfo(durable: string, filterSubject: string): Promise<ConsumerInfo>;
  /** Drain and close. Further calls fail with TransportClosedError. */
  close(): Promise<void>;
}
