import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFolderLockedError } from '../../src/domain/errors.js';
import { lockDataFolder } from '../../src/persistence/data-folder-lock.js';

const LOCK_FILE = 'supervisor-runtime.lock';
// The race needs real processes, and they can only load the compiled module (there is no TypeScript loader).
const DIST_MODULE = fileURLToPath(new URL('../../dist/src/persistence/data-folder-lock.js', import.meta.url));
const distMissing = !existsSync(DIST_MODULE);
if (distMissing) console.warn(`Skipping the multi-process race: ${DIST_MODULE} is missing; run npm run build first.`);

const roots: string[] = [];
function tempFolder(): string {
  const root = mkdtempSync(join(tmpdir(), 'sr-lock-'));
  roots.push(root);
  return join(root, 'data');
}
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** The pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await exited(child);
  return child.pid!;
}

function lockedBy(action: () => unknown): DataFolderLockedError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(DataFolderLockedError);
    return error as DataFolderLockedError;
  }
  throw new Error('expected DataFolderLockedError, but the lock was taken');
}

describe('lockDataFolder', () => {
  it('refuses a second acquire in the same process, and can be acquired again after release', () => {
    const folder = tempFolder();
    const lock = lockDataFolder(folder);
    expect(readFileSync(lock.path, 'utf8')).toBe(String(process.pid));
    const error = lockedBy(() => lockDataFolder(folder));
    expect(error.holderPid).toBe(process.pid);
    expect(error.message).toContain(`in use by process ${process.pid}`);
    // The refused attempt must not have disturbed the held lock.
    expect(readFileSync(lock.path, 'utf8')).toBe(String(process.pid));

    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    lock.release(); // idempotent

    const again = lockDataFolder(folder);
    expect(readFileSync(again.path, 'utf8')).toBe(String(process.pid));
    again.release();
    expect(existsSync(again.path)).toBe(false);
  });

  it('takes over a lock naming our own pid that this process does not hold (same pid after kill -9 in a container)', () => {
    const folder = tempFolder();
    const first = lockDataFolder(folder);
    first.release();
    writeFileSync(join(folder, LOCK_FILE), String(process.pid));

    const lock = lockDataFolder(folder);
    expect(readFileSync(lock.path, 'utf8')).toBe(String(process.pid));
    expect(() => lockDataFolder(folder)).toThrow(DataFolderLockedError);
    lock.release();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('takes over a lock left by a dead process', async () => {
    const folder = tempFolder();
    const dead = await deadPid();
    lockDataFolder(folder).release(); // creates the folder
    writeFileSync(join(folder, LOCK_FILE), String(dead));

    const lock = lockDataFolder(folder);
    expect(readFileSync(lock.path, 'utf8')).toBe(String(process.pid));
    lock.release();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('refuses a lock held by another live process, naming its pid', async () => {
    const folder = tempFolder();
    lockDataFolder(folder).release();
    const other = spawn(process.execPath, ['-e', 'setTimeout(()=>{},10000)'], { stdio: 'ignore' });
    try {
      const pid = other.pid!;
      writeFileSync(join(folder, LOCK_FILE), String(pid));
      const error = lockedBy(() => lockDataFolder(folder));
      expect(error.holderPid).toBe(pid);
      expect(error.message).toContain(`in use by process ${pid}`);
      expect(readFileSync(join(folder, LOCK_FILE), 'utf8')).toBe(String(pid));
    } finally {
      other.kill('SIGKILL');
      await exited(other);
    }
  });

  it('takes over a stale lock even when a contender was killed holding the takeover guard, and leaves no guard behind', async () => {
    const folder = tempFolder();
    lockDataFolder(folder).release();
    const dead = await deadPid();
    writeFileSync(join(folder, LOCK_FILE), String(dead));
    writeFileSync(join(folder, `${LOCK_FILE}.takeover`), String(dead));
    const lock = lockDataFolder(folder);
    expect(readFileSync(lock.path, 'utf8')).toBe(String(process.pid));
    expect(readdirSync(folder)).toEqual([LOCK_FILE]);
    lock.release();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('waits for a takeover guard held by a live process instead of removing it, then gives up with the holder named', async () => {
    const folder = tempFolder();
    lockDataFolder(folder).release();
    writeFileSync(join(folder, LOCK_FILE), String(await deadPid()));
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(folder, `${LOCK_FILE}.takeover`), String(other.pid));
      const error = lockedBy(() => lockDataFolder(folder));
      expect(error.holderPid).toBe(other.pid);
      // The live guard was left alone, and so was the stale lock it guards.
      expect(readFileSync(join(folder, `${LOCK_FILE}.takeover`), 'utf8')).toBe(String(other.pid));
      expect(existsSync(join(folder, LOCK_FILE))).toBe(true);
    } finally {
      other.kill('SIGKILL');
      await exited(other);
    }
  }, 20_000);

  it.skipIf(distMissing)(
    'of several processes taking over the same stale lock at once, exactly one wins (needs npm run build)',
    async () => {
      const root = mkdtempSync(join(tmpdir(), 'sr-lock-race-'));
      roots.push(root);
      const script = join(root, 'contender.mjs');
      // Each contender reports ready, spins until the go file appears, tries the lock, holds it 500 ms, releases.
      writeFileSync(
        script,
        `import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [modulePath, folder, go] = process.argv.slice(2);
const { lockDataFolder } = await import(pathToFileURL(modulePath).href);
process.stdout.write('ready\\n');
const tick = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(go)) Atomics.wait(tick, 0, 0, 1);
let lock;
try {
  lock = lockDataFolder(folder);
} catch (error) {
  if (error.name !== 'DataFolderLockedError') throw error;
  process.stdout.write('locked ' + error.holderPid + '\\n');
  process.exit(0);
}
process.stdout.write('ok ' + process.pid + '\\n');
setTimeout(() => { lock.release(); process.exit(0); }, 500);
`,
      );

      for (let round = 0; round < 5; round++) {
        const folder = join(root, `data-${round}`);
        const go = join(root, `go-${round}`);
        lockDataFolder(folder).release();
        writeFileSync(join(folder, LOCK_FILE), String(await deadPid()));

        const children = Array.from({ length: 8 }, () => {
          const child = spawn(process.execPath, [script, DIST_MODULE, folder, go], { stdio: ['ignore', 'pipe', 'pipe'] });
          const output = { stdout: '', stderr: '' };
          child.stdout!.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
          child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
          return { child, output };
        });
        const deadline = Date.now() + 20_000;
        while (!children.every(({ output }) => output.stdout.includes('ready'))) {
          if (Date.now() > deadline) throw new Error('contenders did not start');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        writeFileSync(go, '');
        const codes = await Promise.all(children.map(({ child }) => exited(child)));

        const results = children.map(({ output }) => output.stdout.replace('ready\n', '').trim());
        expect(children.map(({ output }) => output.stderr)).toEqual(children.map(() => ''));
        expect(codes).toEqual(children.map(() => 0));
        const winners = results.filter((line) => line.startsWith('ok '));
        expect(winners, results.join(' | ')).toHaveLength(1);
        const winnerPid = winners[0]!.slice('ok '.length);
        expect(results.filter((line) => line === `locked ${winnerPid}`), results.join(' | ')).toHaveLength(children.length - 1);
        // The winner released its lock, and no renamed-aside stale file was left behind.
        expect(readdirSync(folder)).toEqual([]);
      }
    },
    60_000,
  );
});
