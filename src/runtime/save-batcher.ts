// Group commit: save points and heartbeats of many supervisors that arrive together go to the database as one
// statement each (one round trip, one transaction), and every caller is answered only after that commit, with its
// own outcome. A save arriving while the database is idle goes at once, so one supervisor waits no longer than alone.

import { DatabaseUnavailableError } from '../domain/errors.js';
import type { Database } from '../persistence/database.js';
import { isNoAnswer } from '../persistence/database-errors.js';
import {
  saveSupervisorStatesFull,
  updateSupervisorHeartbeats,
  type FullSaveInput,
  type FullSaveResult,
  type HeartbeatWrite,
} from '../persistence/supervisor-repository.js';
import { crashPoint, type CrashPointName } from './crash-points.js';

export interface SaveBatcherOptions {
  /** Most save points in one statement (default 250). */
  maxBatch?: number;
  /** Group statements in flight at once (default 2: one committing while the next fills). */
  maxInFlight?: number;
}

export interface SaveBatcherStats {
  /** Save statements sent, and the save points they carried. */
  saveStatements: number;
  savePoints: number;
  heartbeatStatements: number;
  heartbeats: number;
  largestBatch: number;
  /** Save points and heartbeats queued now behind the statements in flight (they go together in the next one). */
  savesWaiting: number;
  heartbeatsWaiting: number;
}

export interface SaveBatcher {
  save(input: FullSaveInput): Promise<FullSaveResult>;
  /** Resolves true when written, false when there is no such supervisor; rejects with OwnershipLostError when fenced out. */
  heartbeat(write: HeartbeatWrite): Promise<boolean>;
  stats(): SaveBatcherStats;
}

interface Waiting<I, O> {
  input: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/**
 * One queue per kind. A flush takes up to maxBatch waiting entries; while maxInFlight statements are in flight, new
 * entries wait and go together in the next one. A group's rows name distinct supervisors: one supervisor's steps run
 * one at a time, but two spawns racing for one caller-chosen id are two writers, so the second waits for a later
 * group (where the step fence answers it), never failing the statement.
 */
export function createSaveBatcher(database: Database, options: SaveBatcherOptions = {}): SaveBatcher {
  const maxBatch = Math.max(1, options.maxBatch ?? 250);
  const maxInFlight = Math.max(1, options.maxInFlight ?? 2);
  const stats: Omit<SaveBatcherStats, 'savesWaiting' | 'heartbeatsWaiting'> = { saveStatements: 0, savePoints: 0, heartbeatStatements: 0, heartbeats: 0, largestBatch: 0 };

  /** `statements` and `items` name the counters this queue adds to. */
  function queue<I extends { supervisorId: string }, O>(
    operation: string,
    run: (inputs: I[]) => Promise<Array<{ ok: true; value: O } | { ok: false; error: Error }>>,
    counters: { statements: 'saveStatements' | 'heartbeatStatements'; items: 'savePoints' | 'heartbeats' },
    deferFirst: boolean,
    /** Crash points around the statement (full save points only). */
    points: { beforeStatement: CrashPointName; afterCommit: CrashPointName } | null,
  ) {
    let waiting: Array<Waiting<I, O>> = [];
    let inFlight = 0;
    let scheduled = false;
    /**
     * A group the database did not answer at all (frozen, stalled): what waited behind it fails now, never sent, instead
     * of waiting a timeout of its own after it, so every caller hears within one timeout.
     */
    const failWaitingIfNoAnswer = (error: unknown) => {
      if (!(error instanceof DatabaseUnavailableError) || !isNoAnswer(error.cause)) return;
      for (const entry of waiting.splice(0)) entry.reject(new DatabaseUnavailableError(operation, entry.input.supervisorId, error.cause));
    };
    /** Up to maxBatch waiting entries in arrival order, one per supervisor; the rest keep waiting, in order. */
    const takeGroup = (): Array<Waiting<I, O>> => {
      const group: Array<Waiting<I, O>> = [];
      const skipped: Array<Waiting<I, O>> = [];
      const ids = new Set<string>();
      let index = 0;
      for (; index < waiting.length && group.length < maxBatch; index++) {
        const entry = waiting[index] as Waiting<I, O>;
        if (ids.has(entry.input.supervisorId)) {
          skipped.push(entry);
        } else {
          ids.add(entry.input.supervisorId);
          group.push(entry);
        }
      }
      waiting = skipped.length === 0 ? waiting.slice(index) : skipped.concat(waiting.slice(index));
      return group;
    };
    const flush = () => {
      scheduled = false;
      while (waiting.length > 0 && inFlight < maxInFlight) {
        const group = takeGroup();
        inFlight += 1;
        stats[counters.statements] += 1;
        stats[counters.items] += group.length;
        stats.largestBatch = Math.max(stats.largestBatch, group.length);
        if (points) crashPoint(points.beforeStatement);
        run(group.map((entry) => entry.input))
          .then(
            (outcomes) => {
              // Committed for every save point it reports ok, and nobody has heard yet.
              if (points && outcomes.some((outcome) => outcome.ok)) crashPoint(points.afterCommit);
              group.forEach((entry, index) => {
                const outcome = outcomes[index];
                if (outcome?.ok) entry.resolve(outcome.value);
                else {
                  entry.reject(outcome?.error ?? new Error('group commit: no outcome for a save point'));
                  failWaitingIfNoAnswer(outcome?.error);
                }
              });
            },
            (error: unknown) => {
              group.forEach((entry) => entry.reject(error));
              failWaitingIfNoAnswer(error);
            },
          )
          .finally(() => {
            inFlight -= 1;
            flush();
          });
      }
    };
    const enqueue = (input: I) =>
      new Promise<O>((resolve, reject) => {
        waiting.push({ input, resolve, reject });
        // Heartbeats of one round fire in the same tick: gather them before the first goes.
        if (deferFirst) {
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        } else {
          flush();
        }
      });
    return { enqueue, waiting: () => waiting.length };
  }

  const save = queue<FullSaveInput, FullSaveResult>(
    'saveSupervisorStateFull',
    async (inputs) => (await saveSupervisorStatesFull(database.db, inputs)).map((outcome) => (outcome.ok ? { ok: true, value: outcome.result } : outcome)),
    { statements: 'saveStatements', items: 'savePoints' },
    false,
    { beforeStatement: 'save.before-statement', afterCommit: 'save.after-commit' },
  );
  const heartbeat = queue<HeartbeatWrite, boolean>(
    'updateSupervisorHeartbeat',
    async (writes) => (await updateSupervisorHeartbeats(database.db, writes)).map((outcome) => (outcome.ok ? { ok: true, value: outcome.written } : outcome)),
    { statements: 'heartbeatStatements', items: 'heartbeats' },
    true,
    null,
  );
  return {
    save: save.enqueue,
    heartbeat: heartbeat.enqueue,
    stats: () => ({ ...stats, savesWaiting: save.waiting(), heartbeatsWaiting: heartbeat.waiting() }),
  };
}
