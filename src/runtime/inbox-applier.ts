// The owner's side of the inbox: applies answers and task events recorded (by any daemon) for supervisors this daemon
// owns, in the order they were recorded, and stamps each with what happened. Woken by the database notification the
// recording statement sends; a slow poll covers notifications lost with a connection.

import { EventRefusedError, InvalidSupervisorDataError, SupervisorNotFoundError, errorText } from '../domain/errors.js';
import { pruneDeadLetters } from '../persistence/ownership/dead-letters.js';
import { listInboxForOwner, markInboxApplied, pruneInbox, type InboxOutcome, type InboxRow } from '../persistence/ownership/inbox.js';
import { getTask } from '../persistence/supervisor-repository.js';
import type { InboundCounts, InboundKind } from './inbound-consumers.js';
import { MessageAlreadyReceivedError, QuestionAlreadyAnsweredError, TaskNotFoundError } from './errors.js';
import { crashPoint } from './crash-points.js';
import type { Logger } from './logger.js';
import type { RuntimeHost } from './runtime-host.js';

/** Dead letters are kept this long for inspection, then pruned with the handled inbox rows. */
const DEAD_LETTER_RETENTION_MS = 30 * 24 * 3_600_000;

export interface InboxApplierOptions {
  /** Look for messages this often when no notification arrived (default 1 s). */
  pollIntervalMs?: number;
  /** Messages read per round (default 100). */
  batchSize?: number;
  /** Handled messages are kept this long for dedup and inspection (default 24 h). */
  retentionMs?: number;
}

/** What the applier calls to apply one message (the runtime's own commands). */
export interface InboxCommands {
  answer(supervisorId: string, questionId: string, answer: string): Promise<unknown>;
  taskEvent(taskId: string, event: { type: 'progress' | 'completed' | 'failed'; progress?: number; result?: string; error?: string }): Promise<unknown>;
  /** Take in a message another supervisor sent; MessageAlreadyReceivedError when it was taken in before. */
  message(supervisorId: string, message: { from: string; messageId: string; body: string; sentAt: string }): Promise<unknown>;
}

export interface InboxApplier {
  wake(): void;
  stop(): Promise<void>;
}

/** The applier with its wake-up: what the runtime runs whenever it has a database, with or without a transport. */
export interface OwnerInbox extends InboxApplier {
  /** The notification channel recording statements wake the owner on. */
  readonly channel: string;
  /** Counts shared with the inbound consumers (they add recorded, retried…; the applier applied, duplicates, refused). */
  readonly counts: Record<InboundKind, InboundCounts>;
}

/** Unexpected failures of one message before it is stamped refused instead of retried forever. */
const MAX_UNEXPECTED_FAILURES = 5;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Start the applier and listen for the notification another daemon's recording statement sends, so a message for a
 * supervisor this daemon owns applies at once rather than at the next poll. Needs only the database: a daemon whose
 * transport is down still applies what the others record for it.
 */
export async function startOwnerInbox(host: RuntimeHost, commands: InboxCommands, counts: Record<InboundKind, InboundCounts>, options: InboxApplierOptions = {}): Promise<OwnerInbox> {
  const applier = startInboxApplier(host, commands, counts, options);
  const channel = host.database.notificationChannel('inbox');
  let unlisten: () => Promise<void>;
  try {
    unlisten = await host.database.listen(channel, (payload) => {
      if (payload === `inbox ${host.daemonId}`) applier.wake();
    });
  } catch (error) {
    await applier.stop();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  return {
    channel,
    counts,
    wake: () => applier.wake(),
    stop() {
      stopping ??= (async () => {
        await unlisten().catch((error: unknown) => host.logger.warn({ err: errorText(error) }, 'could not stop listening for inbox notifications'));
        await applier.stop();
      })();
      return stopping;
    },
  };
}

export function startInboxApplier(
  host: RuntimeHost,
  commands: InboxCommands,
  counts: Record<InboundKind, InboundCounts>,
  options: InboxApplierOptions = {},
): InboxApplier {
  const db = host.database.db;
  const logger: Logger = host.logger.child({ component: 'inbox' });
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  const retentionMs = options.retentionMs ?? 24 * 3_600_000;
  const failures = new Map<number, number>();
  let stopped = false;
  let woken = false;
  let interrupt: (() => void) | null = null;
  let lastPrune = Date.now();

  /** What happened to one message; null: not now (the supervisor is being restored here, or the database is away). */
  async function applyOne(row: InboxRow): Promise<{ outcome: InboxOutcome; detail: string | null } | null> {
    const payload = isRecord(row.payload) ? row.payload : {};
    try {
      if (row.kind === 'answer') {
        await commands.answer(row.supervisorId, String(payload.questionId), String(payload.answer));
      } else if (row.kind === 'message') {
        await commands.message(row.supervisorId, { from: String(payload.from), messageId: String(payload.messageId), body: String(payload.body), sentAt: String(payload.sentAt) });
      } else {
        const type = payload.type === 'completed' || payload.type === 'failed' ? payload.type : 'progress';
        await commands.taskEvent(String(payload.taskId), {
          type,
          ...(typeof payload.progress === 'number' ? { progress: payload.progress } : {}),
          ...(typeof payload.result === 'string' ? { result: payload.result } : {}),
          ...(typeof payload.error === 'string' ? { error: payload.error } : {}),
        });
      }
      return { outcome: 'applied', detail: null };
    } catch (error) {
      if (error instanceof QuestionAlreadyAnsweredError || error instanceof MessageAlreadyReceivedError) return { outcome: 'duplicate', detail: error.message };
      if (error instanceof SupervisorNotFoundError || error instanceof TaskNotFoundError) return { outcome: 'unknown', detail: error.message };
      if (error instanceof EventRefusedError) {
        // Not running here any more (lost, stopping): leave it for whoever owns it. Otherwise the machine said no.
        if (!host.running(row.supervisorId)) return null;
        if (row.kind === 'task_event') {
          const task = await getTask(db, String(payload.taskId)).catch(() => null);
          if (task && (task.status === 'completed' || task.status === 'failed')) return { outcome: 'duplicate', detail: error.message };
        }
        return { outcome: 'refused', detail: error.message };
      }
      if (error instanceof InvalidSupervisorDataError) return { outcome: 'refused', detail: error.message };
      if (!host.running(row.supervisorId)) return null;
      // Database away, save failed, ownership lost: not now. Anything else is bounded.
      const name = error instanceof Error ? error.name : '';
      if (['DatabaseUnavailableError', 'SaveFailedError', 'OwnershipLostError', 'RuntimeStoppedError', 'SupervisorNotRunningError'].includes(name)) return null;
      const failed = (failures.get(row.id) ?? 0) + 1;
      failures.set(row.id, failed);
      logger.error({ supervisorId: row.supervisorId, msgId: row.msgId, err: errorText(error), failed }, 'unexpected error applying an inbox message');
      return failed >= MAX_UNEXPECTED_FAILURES ? { outcome: 'refused', detail: `gave up after ${failed} failures: ${errorText(error)}` } : null;
    }
  }

  /** Supervisors whose messages wait (not running here yet): left out of later reads, all tried again every tenth round. */
  let waitingBefore = new Set<string>();
  let rounds = 0;

  async function round(): Promise<void> {
    rounds += 1;
    if (rounds % 10 === 0) waitingBefore = new Set();
    const skip = [...waitingBefore].filter((id) => !host.running(id)).slice(0, 1_000);
    const rows = await listInboxForOwner(db, host.daemonId, batchSize, skip);
    // One supervisor's messages apply in order: after one is left for later, its later ones wait too.
    const waiting = new Set<string>();
    for (const row of rows) {
      if (stopped) return;
      const which: InboundKind = row.kind === 'answer' ? 'answers' : row.kind === 'message' ? 'messages' : 'taskEvents';
      const running = host.running(row.supervisorId);
      if (!running && (row.supervisorState === 'completed' || row.supervisorState === 'failed')) {
        // Finished and not loaded here: nothing can ever apply it.
        if (await markInboxApplied(db, row.id, { outcome: 'refused', detail: `supervisor is ${row.supervisorState}` }, { owner: host.daemonId, epoch: null })) counts[which].refused += 1;
        continue;
      }
      if (waiting.has(row.supervisorId) || !running || host.restoring(row.supervisorId)) {
        waiting.add(row.supervisorId);
        continue;
      }
      const result = await applyOne(row);
      if (result === null) {
        waiting.add(row.supervisorId);
        continue;
      }
      if (result.outcome === 'applied') counts[which].applied += 1;
      else if (result.outcome === 'duplicate') counts[which].duplicates += 1;
      else if (result.outcome === 'unknown') counts[which].unknown += 1;
      else {
        counts[which].refused += 1;
        logger.warn({ supervisorId: row.supervisorId, msgId: row.msgId, reason: result.detail }, 'message refused by the supervisor; nothing changed');
      }
      failures.delete(row.id);
      // Applied (its save point committed), not stamped: the next owner finds the row unapplied.
      if (result.outcome === 'applied') crashPoint('inbox.after-apply');
      await markInboxApplied(db, row.id, result, { owner: host.daemonId, epoch: running.epoch });
    }
    for (const id of waiting) waitingBefore.add(id);
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await pruneInbox(db, new Date(Date.now() - retentionMs));
      await pruneDeadLetters(db, new Date(Date.now() - DEAD_LETTER_RETENTION_MS));
    }
  }

  const loop = (async () => {
    let failuresInARow = 0;
    while (!stopped) {
      woken = false;
      try {
        await host.ready();
        await round();
        failuresInARow = 0;
      } catch (error) {
        failuresInARow += 1;
        if (failuresInARow === 1 || failuresInARow % 20 === 0) logger.warn({ err: errorText(error) }, 'could not read the inbox; retrying');
      }
      if (stopped) break;
      if (woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollIntervalMs * (failuresInARow > 0 ? Math.min(10, 2 ** failuresInARow) : 1));
        timer.unref();
        function done(): void {
          clearTimeout(timer);
          interrupt = null;
          resolve();
        }
        interrupt = done;
      });
    }
  })();

  return {
    wake() {
      woken = true;
      interrupt?.();
    },
    async stop() {
      stopped = true;
      interrupt?.();
      await loop;
    },
  };
}
