// Checkpoint retention in the background: supervisors that saved since the last round have their checkpoints beyond
// the newest N deleted, a batch per statement, off the save path (a save never waits for it).

import { errorText } from '../domain/errors.js';
import type { Database } from '../persistence/database.js';
import { pruneCheckpoints } from '../persistence/supervisor-repository.js';
import type { Logger } from './logger.js';

export interface CheckpointRetention {
  /** Checkpoints kept per supervisor, newest first (default 50); a restore walks back through at most these. */
  keep: number;
  /** How often a round runs (default 5 000 ms). */
  intervalMs: number;
}

export const DEFAULT_CHECKPOINT_RETENTION: CheckpointRetention = { keep: 50, intervalMs: 5_000 };

export interface CheckpointPruner {
  /** A supervisor wrote a checkpoint: prune it at the next round. */
  saved(supervisorId: string): void;
  /** Run one round now (tests, shutdown); resolves with the number of checkpoints deleted. */
  prune(): Promise<number>;
  stats(): { rounds: number; deleted: number };
  stop(): void;
}

const BATCH = 500;

export function createCheckpointPruner(database: Database, owner: string, retention: CheckpointRetention, logger: Logger): CheckpointPruner {
  const dirty = new Set<string>();
  const stats = { rounds: 0, deleted: 0 };
  let running: Promise<number> | null = null;
  const round = async (): Promise<number> => {
    let deleted = 0;
    while (dirty.size > 0) {
      const batch = [...dirty].slice(0, BATCH);
      for (const id of batch) dirty.delete(id);
      try {
        deleted += await pruneCheckpoints(database.db, { supervisorIds: batch, keep: retention.keep, owner });
      } catch (error) {
        // Nothing is lost by pruning later: put them back for the next round.
        for (const id of batch) dirty.add(id);
        logger.warn({ err: errorText(error) }, 'checkpoint retention round failed; retrying next round');
        break;
      }
    }
    stats.rounds += 1;
    stats.deleted += deleted;
    return deleted;
  };
  const prune = () => {
    running ??= round().finally(() => (running = null));
    return running;
  };
  const timer = setInterval(() => void prune(), retention.intervalMs);
  timer.unref();
  return {
    saved: (id) => {
      dirty.add(id);
    },
    prune,
    stats: () => ({ ...stats }),
    stop: () => clearInterval(timer),
  };
}
