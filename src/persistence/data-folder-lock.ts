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

    // Stale. Remove it only while holding the takeover guard, and only if it is still the file we judged: a removal
    // made outside the guard could take away a fresh lock that another starter created after removing the stale one.
    const outcome = removeIfUnchanged(path, seen);
    if (outcome === 'busy') sleepSync(2);
    // Loop to create ours with 'wx'; EEXIST there means another starter won, and its lock is judged like any other.
  }
  // Still contended: name the process holding the takeover guard if one does, else the lock file's.
  const guardHolder = parsePid(snapshot(`${path}.takeover`)?.text ?? '');
  const holder = guardHolder !== null && processAlive(guardHolder) ? guardHolder : parsePid(snapshot(path)?.text ?? '');
  throw new DataFolderLockedError(folder, holder ?? -1);
}

/** Whether two reads of the lock file saw the same file with the same content. */
function unchanged(a: { stat: BigIntStats; text: string }, b: { stat: BigIntStats; text: string }): boolean {
  return sameFile(a.stat, b.stat) && a.stat.mtimeNs === b.stat.mtimeNs && a.text === b.text;
}

/**
 * Remove the lock file judged stale, under the takeover guard (`<lock>.takeover`, created with 'wx'): every removal of
 * a lock file happens while holding it, after checking the file is still the one judged stale, so no starter can
 * remove a lock another starter has just created. 'busy': another process holds the guard, try again shortly.
 */
function removeIfUnchanged(path: string, seen: { stat: BigIntStats; text: string }): 'removed' | 'changed' | 'busy' {
  const guardPath = `${path}.takeover`;
  const guard = tryCreate(guardPath);
  if (!guard) {
    clearAbandonedGuard(guardPath);
    return 'busy';
  }
  try {
    const now = snapshot(path);
    if (!now || !unchanged(now, seen)) return 'changed';
    rmSync(path, { force: true });
    return 'removed';
  } finally {
    const current = snapshot(guardPath);
    if (current && sameFile(current.stat, guard)) rmSync(guardPath, { force: true });
  }
}

/**
 * A guard is held for the few microseconds of one check and removal; one whose holder is gone (killed inside that
 * window) or that stays without a pid past the grace period is abandoned. It is renamed aside before removal, so of
 * several processes clearing it, one does; the guard a live process holds is never removed (its pid is alive).
 */
function clearAbandonedGuard(guardPath: string): void {
  const seen = snapshot(guardPath);
  if (!seen) return;
  const holder = parsePid(seen.text);
  if (holder !== null && holder !== process.pid && processAlive(holder)) return;
  if (holder === null && Date.now() - Number(seen.stat.mtimeMs) < UNREADABLE_GRACE_MS) return;
  const aside = `${guardPath}.abandoned-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(guardPath, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  const moved = snapshot(aside);
  if (moved && !unchanged(moved, seen)) {
    // A fresh guard replaced the abandoned one before our rename: put it back unless a newer one exists already.
    try {
      linkSync(aside, guardPath);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') {
        rmSync(aside, { force: true });
        throw error;
      }
    }
  }
  rmSync(aside, { force: true });
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
