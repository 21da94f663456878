// An exclusive lock on the embedded data folder: PGlite has no lock of its own, and two processes on one folder corrupt it.

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataFolderLockedError } from '../domain/errors.js';

export interface DataFolderLock {
  readonly path: string;
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the lock or fail at once with DataFolderLockedError; a lock left by a dead process (kill -9) is taken over. */
export function lockDataFolder(folder: string): DataFolderLock {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, 'supervisor-runtime.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // 'wx' creates atomically and fails if the file exists, so two starters cannot both win.
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (Number.isInteger(holder) && holder > 0 && (holder === process.pid || processAlive(holder))) {
        throw new DataFolderLockedError(folder, holder);
      }
      rmSync(path, { force: true });
    }
  }
  throw new DataFolderLockedError(folder, -1);
}
