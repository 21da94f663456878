// An exclusive lock on the embedded data folder: PGlite has no lock of its own, and two processes on one folder corrupt it.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { join } from 'node:path';
import { DataFolderLockedError } from '../domain/errors.js';

export interface DataFolderLock {
  readonly path: string;
  release(): void;
}

const LOCK_FILE = 'supervisor-runtime.lock';
/** How long a lock file may stay without a readable pid before it counts as left by a writer that died mid-write. */
const UNREADABLE_GRACE_MS = 500;
/** How long to keep contending before giving up; only reached under pathological churn. */
const GIVE_UP_MS = 5_000;

/**
 * Real paths of the folders this process holds right now. A pid alone cannot tell "we hold it" from "a lock left by an
 * earlier process that had our pid": in a container the daemon gets the same pid (often 1) on every start.
 */
const heldFolders = new Set<string>();

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The pid in a lock file's text, or null when the text is not (yet) a pid. */
function parsePid(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) return null;
  const pid = Number(trimmed);
  return pid > 0 ? pid : null;
}

/** Stat and read a file; null when it is gone. */
function snapshot(path: string): { stat: BigIntStats; text: string } | null {
  try {
    const stat = statSync(path, { bigint: true });
    const text = readFileSync(path, 'utf8');
    return { stat, text };
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Create the lock file with our pid; null when it already exists. */
function tryCreate(path: string): BigIntStats | null {
  let fd: number;
  try {
    // 'wx' creates atomically and fails if the file exists, so two starters cannot both win.
    fd = openSync(path, 'wx');
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return null;
    throw error;
  }
  try {
    writeSync(fd, String(process.pid));
    return fstatSync(fd, { bigint: true });
  } finally {
    closeSync(fd);
  }
}

/**
 * Take the lock or fail at once with DataFolderLockedError; a lock left by a dead process (kill -9), or by an earlier
 * process that had our pid, is taken over.
 */
export function lockDataFolder(folder: string): DataFolderLock {
  mkdirSync(folder, { recursive: true });
  const key = realpathSync(folder);
  if (heldFolders.has(key)) throw new DataFolderLockedError(folder, process.pid);
  const path = join(folder, LOCK_FILE);
  const deadline = Date.now() + GIVE_UP_MS;
  // A lock file seen without a readable pid: which file, and since when (by our clock).
  let unreadable: { stat: BigIntStats; since: number } | null = null;

  while (Date.now() < deadline) {
    const created = tryCreate(path);
    if (created) return holdLock(key, path, created);

    const seen = snapshot(path);
    if (!seen) continue; // released or claimed between our create and our read: try again
    const holder = parsePid(seen.text);
    if (holder === null) {
      // Another starter has created the file but not written its pid yet, or a writer died in between.
      if (!unreadable || !sameFile(unreadable.stat, seen.stat)) unreadable = { stat: seen.stat, since: Date.now() };
      if (Date.now() - unreadable.since < UNREADABLE_GRACE_MS) {
        sleepSync(10);
        continue;
      }
    } else if (holder === process.pid ? heldFolders.has(key) : processAlive(holder)) {
      throw new DataFolderLockedError(folder, holder);
    }

    // Stale. Claim it atomically by renaming it aside: of several processes that judged the same file stale, exactly
    // one rename succeeds; the others get ENOENT and go back to competing on the 'wx' create.
    const aside = `${path}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      renameSync(path, aside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue;
      throw error;
    }
    const claimed = snapshot(aside);
    if (
      claimed &&
      (!sameFile(claimed.stat, seen.stat) || claimed.stat.mtimeNs !== seen.stat.mtimeNs || claimed.text !== seen.text)
    ) {
      // Between our read and our rename the stale file was claimed and a fresh lock created, and we renamed that
      // one: put it back (link fails if a lock exists again, so we never overwrite one) and leave it to its holder.
      try {
        linkSync(aside, path);
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') {
          rmSync(aside, { force: true });
          throw error;
        }
      }
      rmSync(aside, { force: true });
      const fresh = parsePid(claimed.text);
      if (fresh !== null && fresh !== process.pid && processAlive(fresh)) throw new DataFolderLockedError(folder, fresh);
      continue; // holder not readable yet: judge the lock again
    }
    rmSync(aside, { force: true });
    // Loop to create ours with 'wx'; EEXIST there means another starter won, and its lock is judged like any other.
  }
  throw new DataFolderLockedError(folder, parsePid(snapshot(path)?.text ?? '') ?? -1);
}

function holdLock(key: string, path: string, created: BigIntStats): DataFolderLock {
  heldFolders.add(key);
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      heldFolders.delete(key);
      // Remove the file only if it is still ours, never a lock someone else has put there since.
      const current = snapshot(path);
      if (current && sameFile(current.stat, created) && parsePid(current.text) === process.pid) rmSync(path, { force: true });
    },
  };
}
