// The outbox relay: publishes committed outbox rows to the transport in order, with their msg_id as dedup id, and marks them sent.
//
// A row is published inside the transaction that claimed it and marked sent before that transaction commits, so a crash
// anywhere leaves it unsent and it is published again; the transport drops the repeat by its msgId. Commits wake the relay
// at once; a poll picks up rows from other daemons and from before a restart.

import { errorText } from '../domain/errors.js';
import type { Database } from '../persistence/database.js';
import { claimOutboxBatch, countUnsentOutbox, markOutboxSent, publishStepRows, pruneSentOutbox, type OutboxFilter } from '../persistence/outbox-repository.js';
import type { OutboxWrite } from '../persistence/supervisor-repository.js';
import { TransportClosedError } from '../transport/errors.js';
import { encodeMessage } from '../transport/messages.js';
import { EPOCH_HEADER, type Transport } from '../transport/transport.js';
import { crashPoint } from './crash-points.js';
import type { Logger } from './logger.js';
import type { RuntimeHooks } from './runtime-host.js';

export interface OutboxRelayOptions {
  /** Rows claimed per transaction (default 100). */
  batchSize?: number;
  /** Fallback poll when no commit woke the relay (default 500 ms). */
  pollIntervalMs?: number;
  /** Sent rows are kept this long, then pruned (default 1 h). */
  retentionMs?: number;
  /** How often to prune (default 60 s). */
  pruneIntervalMs?: number;
  /** First pause after a failure; doubles per failure in a row (default 250 ms). */
  minBackoffMs?: number;
  /** Longest pause between attempts while the transport or database is down (default 5 s). */
  maxBackoffMs?: number;
  /** Final drain on runtime shutdown is bounded by this (default 2 s). */
  shutdownDrainMs?: number;
}

export interface OutboxRelayStats {
  /** Rows the transport stored as new messages. */
  published: number;
  /** Rows the transport had already seen (published before a crash, or by another relay) and dropped. */
  duplicates: number;
  /** Attempts that failed (transport or database down); the rows stayed unsent. */
  failures: number;
  lastError: string | null;
  /** Unsent rows at the last look (exact after drain(), approximate between polls). */
  unsentEstimate: number;
}

export interface OutboxRelay {
  /** Look for rows now (called after every full save point). */
  wake(): void;
  /** Publish until nothing is unsent; resolves true when drained, false when the timeout (default 5 s) came first. */
  drain(timeoutMs?: number): Promise<boolean>;
  /** Stop after the batch in progress; rows not published stay for the next relay. */
  stop(): Promise<void>;
  stats(): OutboxRelayStats;
}

/** What the relay needs of the runtime (its host interface has all of it). */
export interface OutboxRelayHost {
  readonly database: Database;
  readonly transport: Transport | undefined;
  readonly hooks: RuntimeHooks;
  readonly logger: Logger;
}

type CycleOutcome = 'more' | 'idle' | 'failed' | 'closed';

export function startOutboxRelay(host: OutboxRelayHost, options: OutboxRelayOptions = {}): OutboxRelay {
  const transport = host.transport;
  if (!transport) {
    throw new Error('The outbox relay needs a transport: create the runtime with `transport` (createTransport({ natsUrl }) or createInProcessBus()).');
  }
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const retentionMs = options.retentionMs ?? 3_600_000;
  const pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  const minBackoffMs = options.minBackoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  const shutdownDrainMs = options.shutdownDrainMs ?? 2_000;
  const logger = host.logger.child({ component: 'outbox-relay' });
  const db = host.database.db;
  const filter: OutboxFilter = { subjectPrefix: transport.subjectPrefix };

  const stats: OutboxRelayStats = { published: 0, duplicates: 0, failures: 0, lastError: null, unsentEstimate: 0 };
  let stopped = false;
  let failuresInARow = 0;
  let lastPruneAt = Date.now();
  // One cycle at a time: the background loop and drain() share this chain.
  let exclusive: Promise<unknown> = Promise.resolve();
  let woken = false;
  let interruptSleep: (() => void) | null = null;
  let sleepIsWakeable = false;

  function serialize<T>(operation: () => Promise<T>): Promise<T> {
    const run = exclusive.then(operation, operation);
    exclusive = run.catch(() => undefined);
    return run;
  }

  function sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        interruptSleep = null;
        resolve();
      }
      interruptSleep = done;
      sleepIsWakeable = wakeable;
    });
  }

  function recordFailure(error: unknown): void {
    stats.failures += 1;
    failuresInARow += 1;
    stats.lastError = errorText(error);
    // Once per outage (and then every 20th attempt), not once per retry.
    if (failuresInARow === 1 || failuresInARow % 20 === 0) {
      logger.warn({ err: stats.lastError, attempts: failuresInARow }, 'outbox relay cannot publish; rows stay in the outbox and are retried in order');
    }
  }

  function recordSuccess(): void {
    if (failuresInARow > 0) logger.info({ failedAttempts: failuresInARow }, 'outbox relay publishing again; the backlog drains in order');
    failuresInARow = 0;
  }

  /** Claim a batch, publish it in order up to the first failure, mark what went out, commit. */
  async function cycle(): Promise<CycleOutcome> {
    if (!transport) return 'closed';
    let claimed = 0;
    let sent = 0;
    let publishError: unknown = null;
    try {
      await db.transaction().execute(async (trx) => {
        const rows = await claimOutboxBatch(trx, batchSize, filter);
        claimed = rows.length;
        const done: number[] = [];
        const published: string[] = [];
        for (const row of rows) {
          try {
            // The epoch travels as a header: a consumer can tell a message written by an owner that has since lost the supervisor.
            const headers = row.epoch === null ? undefined : { [EPOCH_HEADER]: String(row.epoch) };
            const result = await transport.publish(row.subject, encodeMessage(row.payload as object), { msgId: row.msgId, ...(headers ? { headers } : {}) });
            if (result.duplicate) stats.duplicates += 1;
            else stats.published += 1;
            done.push(row.id);
            published.push(row.msgId);
          } catch (error) {
            // Later rows of this batch stay unsent, so they keep their place behind this one.
            publishError = error;
            break;
          }
        }
        if (done.length > 0) crashPoint('outbox.after-publish', { msgIds: published });
        await markOutboxSent(trx, done);
        sent = done.length;
      });
    } catch (error) {
      // The database failed (claim, mark or commit): whatever was published goes again later and is dropped as a duplicate.
      recordFailure(error);
      return 'failed';
    }
    if (publishError !== null) {
      if (publishError instanceof TransportClosedError) return 'closed';
      recordFailure(publishError);
      stats.unsentEstimate = Math.max(stats.unsentEstimate - sent, claimed - sent);
      return 'failed';
    }
    recordSuccess();
    if (claimed >= batchSize) {
      stats.unsentEstimate = Math.max(0, stats.unsentEstimate - sent);
      return 'more';
    }
    stats.unsentEstimate = 0;
    return 'idle';
  }

  async function countUnsent(): Promise<number> {
    const unsent = await countUnsentOutbox(db, filter);
    stats.unsentEstimate = unsent;
    return unsent;
  }

  async function pruneIfDue(): Promise<void> {
    if (Date.now() - lastPruneAt < pruneIntervalMs) return;
    lastPruneAt = Date.now();
    try {
      const pruned = await pruneSentOutbox(db, new Date(Date.now() - retentionMs));
      if (pruned > 0) logger.debug({ pruned }, 'pruned relayed outbox rows');
    } catch (error) {
      logger.warn({ err: errorText(error) }, 'could not prune the outbox; retrying at the next interval');
    }
  }

  function backoffMs(): number {
    return Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.max(0, failuresInARow - 1));
  }

  const loop = (async () => {
    // The first pass claims at once: rows may be waiting from before a restart.
    let claimNow = true;
    while (!stopped) {
      const outcome = await serialize(async (): Promise<CycleOutcome> => {
        if (stopped) return 'closed';
        if (!claimNow) {
          // A poll that nothing woke: one cheap count instead of an empty claiming transaction.
          try {
            if ((await countUnsent()) === 0) {
              recordSuccess();
              return 'idle';
            }
          } catch (error) {
            recordFailure(error);
            return 'failed';
          }
        }
        return cycle();
      });
      if (stopped || outcome === 'closed') break;
      if (outcome === 'more') {
        claimNow = true;
        continue;
      }
      await serialize(pruneIfDue);
      if (woken) {
        // A commit arrived while that batch was in flight.
        woken = false;
        claimNow = true;
        if (outcome === 'idle') continue;
      }
      // While failing, commits do not cut the pause short: they would only hammer a server that is down.
      if (outcome === 'failed') {
        await sleep(backoffMs(), false);
        claimNow = true;
      } else {
        await sleep(pollIntervalMs, true);
        claimNow = woken;
      }
      woken = false;
    }
  })();

  const relay: OutboxRelay = {
    wake() {
      if (stopped) return;
      woken = true;
      if (sleepIsWakeable) interruptSleep?.();
    },

    async drain(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (stopped) return false;
        const outcome = await serialize(cycle);
        if (outcome === 'closed') return false;
        if (outcome === 'idle') {
          try {
            if ((await serialize(countUnsent)) === 0) return true;
          } catch (error) {
            recordFailure(error);
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) return false;
        if (outcome !== 'more') {
          // Rows held by another relay, or a transport that is down: look again shortly.
          await new Promise((resolve) => setTimeout(resolve, Math.min(left, outcome === 'failed' ? backoffMs() : 25)));
        }
      }
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      interruptSleep?.();
      removeHooks();
      await loop;
      await exclusive;
    },

    stats: () => ({ ...stats }),
  };

  /**
   * The fast path: a step's outbox rows are published straight after its commit, from memory, then marked sent, which
   * saves the claiming transaction. Only while nothing is waiting here (no backlog, no failure), and only holding the
   * supervisor's outbox lock with no earlier row of it unsent (publishStepRows), so one supervisor's messages still go
   * out in order whichever relay sends them; otherwise, and for anything left unsent, the loop takes over. A crash
   * between publish and mark publishes again later, and the transport drops the repeat by its msgId.
   */
  function publishCommitted(supervisorId: string, rows: readonly OutboxWrite[], epoch: number): void {
    void serialize(async () => {
      if (stopped || !transport) return;
      if (failuresInARow > 0 || stats.unsentEstimate > 0) {
        relay.wake();
        return;
      }
      const sent: string[] = [];
      try {
        const outcome = await publishStepRows(
          db,
          supervisorId,
          rows.map((row) => row.msgId),
          async () => {
            for (const row of rows) {
              if (!row.subject.startsWith(transport.subjectPrefix)) continue;
              const result = await transport.publish(row.subject, encodeMessage(row.payload as object), { msgId: row.msgId, headers: { [EPOCH_HEADER]: String(epoch) } });
              if (result.duplicate) stats.duplicates += 1;
              else stats.published += 1;
              sent.push(row.msgId);
            }
            if (sent.length > 0) crashPoint('outbox.after-publish', { msgIds: sent });
            return sent;
          },
        );
        if (outcome === 'declined') {
          relay.wake();
          return;
        }
      } catch (error) {
        // What went out is published again by the loop and dropped as a duplicate; nothing is lost.
        if (!(error instanceof TransportClosedError)) logger.debug({ err: errorText(error) }, 'publish after commit failed; the relay loop takes the rows');
        relay.wake();
        return;
      }
      if (sent.length < rows.length) relay.wake();
    }).catch((error: unknown) => logger.warn({ err: errorText(error) }, 'publish after commit failed; the relay loop takes the rows'));
  }

  const onCommitted: RuntimeHooks['onCommitted'][number] = (supervisor, step) => {
    // Only full save points write outbox rows.
    if (step.kind !== 'full') return;
    if (step.outbox && step.outbox.length > 0) publishCommitted(supervisor.id, step.outbox, supervisor.epoch);
    else relay.wake();
  };
  const onShutdown = async (): Promise<void> => {
    if (stopped) return;
    const drained = await relay.drain(shutdownDrainMs);
    if (!drained) {
      logger.warn({ unsent: stats.unsentEstimate, lastError: stats.lastError }, 'outbox not fully relayed at shutdown; the rest is published by the next relay to start');
    }
    await relay.stop();
  };
  host.hooks.onCommitted.push(onCommitted);
  host.hooks.onShutdown.push(onShutdown);
  // The shutdown hook stays registered (a no-op once stopped): the runtime may be iterating that list right now.
  function removeHooks(): void {
    const committedAt = host.hooks.onCommitted.indexOf(onCommitted);
    if (committedAt >= 0) host.hooks.onCommitted.splice(committedAt, 1);
  }

  logger.debug({ batchSize, pollIntervalMs }, 'outbox relay started');
  return relay;
}
