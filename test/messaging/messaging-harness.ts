// Shared set-up for the messaging suites: (PGlite + in-process bus) always, (Postgres + NATS) when both are reachable,
// each test with its own schema and its own subject prefix, and a subscriber that records what it receives.

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, beforeEach } from 'vitest';
import type { Database } from '../../src/persistence/database.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createRuntime, type RuntimeOptions, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { streamNames } from '../../src/transport/subjects.js';
import type { InboundMessage, Subscription, Transport } from '../../src/transport/transport.js';
import { databaseTargets, useIsolatedDatabase, type DatabaseTarget } from '../helpers/databases.js';
import { NATS_ENABLE_LINE, natsAvailable, natsUrlForTests } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';

export const quietLogger = { info: () => {}, warn: () => {}, error: () => {} };

export interface MessagingTarget {
  name: string;
  database: DatabaseTarget;
  transport: 'in-process' | 'nats';
}

/** PGlite + in-process bus always; Postgres + NATS when both answer (required with CI=true). Call at collection time. */
export async function messagingTargets(): Promise<MessagingTarget[]> {
  const databases = await databaseTargets();
  const pglite = databases.find((target) => target.name === 'pglite')!;
  const targets: MessagingTarget[] = [{ name: 'PGlite + in-process bus', database: pglite, transport: 'in-process' }];
  const postgres = databases.find((target) => target.name === 'postgres');
  if (postgres) {
    const gate = serverGate('NATS', await natsAvailable(natsUrlForTests()), NATS_ENABLE_LINE);
    if (gate.run) targets.push({ name: 'Postgres + NATS JetStream', database: postgres, transport: 'nats' });
  }
  return targets;
}

let prefixCounter = 0;
export function uniquePrefix(tag = 'msg'): string {
  prefixCounter += 1;
  return `${tag}${process.pid}x${Date.now().toString(36)}x${prefixCounter}.`;
}

export async function deleteStreams(url: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of Object.values(streamNames(prefix))) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

export interface MessagingEnvironment {
  database(): Database;
  prefix(): string;
  /** A started transport for this test's prefix (closed after the test). */
  transport(): Promise<Transport>;
  runtime(options?: Partial<RuntimeOptions>): Promise<SupervisorRuntime>;
  /** Run after the test, before the schema is dropped (last registered runs first). */
  defer(step: () => Promise<unknown>): void;
}

/** Call inside describe: a migrated schema, a subject prefix and a cleanup stack per test. */
export function useMessagingEnvironment(target: MessagingTarget): MessagingEnvironment {
  const database = useIsolatedDatabase(target.database);
  const cleanup: Array<() => Promise<unknown>> = [];
  let prefix = '';
  let shared: Transport | null = null;
  beforeEach(() => {
    prefix = uniquePrefix();
    shared = null;
  });
  // Registered after useIsolatedDatabase, so it runs before the schema is dropped.
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
    if (target.transport === 'nats') await deleteStreams(natsUrlForTests(), prefix);
  });
  const environment: MessagingEnvironment = {
    database,
    prefix: () => prefix,
    defer: (step) => void cleanup.push(step),
    async transport() {
      if (shared) return shared;
      const transport =
        target.transport === 'nats'
          ? createNatsTransport({ servers: natsUrlForTests(), subjectPrefix: prefix, name: 'messaging-test', logger: quietLogger })
          : createInProcessBus({ subjectPrefix: prefix, logger: quietLogger });
      environment.defer(() => transport.close());
      await transport.start();
      shared = transport;
      return transport;
    },
    async runtime(options = {}) {
      const transport = options.transport ?? (await environment.transport());
      const runtime = createRuntime({ database: database(), transport, subjectPrefix: prefix, heartbeatIntervalMs: 0, logger: silentLogger, ...options });
      environment.defer(() => runtime.shutdown({ closeDatabase: false, closeTransport: false }));
      return runtime;
    },
  };
  return environment;
}

export interface Received {
  subject: string;
  msgId: string | null;
  body: Record<string, unknown>;
  deliveryCount: number;
}

/** A durable subscriber that records (and acks) every message it gets. */
export class Recorder {
  readonly received: Received[] = [];
  subscription: Subscription | null = null;

  constructor(private readonly onMessage?: (message: InboundMessage, received: Received) => Promise<void>) {}

  static async start(
    transport: Transport,
    durable: string,
    filterSubject: string,
    onMessage?: (message: InboundMessage, received: Received) => Promise<void>,
  ): Promise<Recorder> {
    const recorder = new Recorder(onMessage);
    recorder.subscription = await transport.subscribe({ durable, filterSubject, ackWaitMs: 2_000 }, async (message) => {
      const received: Received = {
        subject: message.subject,
        msgId: message.msgId,
        body: JSON.parse(new TextDecoder().decode(message.data)) as Record<string, unknown>,
        deliveryCount: message.deliveryCount,
      };
      if (recorder.onMessage) {
        await recorder.onMessage(message, received);
      } else {
        await message.ack();
      }
      recorder.received.push(received);
    });
    return recorder;
  }

  async waitFor(count: number, timeoutMs = 10_000): Promise<Received[]> {
    await eventually(`${count} messages (have ${this.received.length})`, () => (this.received.length >= count ? true : undefined), timeoutMs);
    return this.received;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}

export async function eventually<T>(what: string | (() => string), probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const bytes = (value: string | object) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

export interface StoredOutboxRow {
  id: number;
  supervisorId: string;
  subject: string;
  msgId: string;
  payload: Record<string, unknown>;
  sent: boolean;
}

export async function outboxRows(database: Database, supervisorId?: string): Promise<StoredOutboxRow[]> {
  let query = database.db.selectFrom('supervisor_outbox').selectAll().orderBy('id');
  if (supervisorId) query = query.where('supervisor_id', '=', supervisorId);
  const rows = await query.execute();
  return rows.map((row) => ({
    id: Number(row.id),
    supervisorId: row.supervisor_id,
    subject: row.subject,
    msgId: row.msg_id,
    payload: row.payload as Record<string, unknown>,
    sent: row.sent_at !== null,
  }));
}

/** Messages grouped by supervisor, in arrival order (msgIds). */
export function bySupervisor<T extends { msgId: string | null }>(items: T[], supervisorOf: (item: T) => string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const item of items) {
    const key = supervisorOf(item);
    groups.set(key, [...(groups.get(key) ?? []), item.msgId ?? '']);
  }
  return groups;
}
