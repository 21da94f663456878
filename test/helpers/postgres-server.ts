// Private Postgres servers for fault tests: initdb in a temp folder, run on a free port, then stop (fast or immediate),
// start again on the same port and data, or freeze (SIGSTOP) and thaw. Never touches the shared server on 5432.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { postgresReachable } from './databases.js';
import { freePort } from './nats-server.js';

export const PRIVATE_POSTGRES_ENABLE_LINE =
  'install the PostgreSQL server binaries (apt-get install postgresql, which puts initdb in /usr/lib/postgresql/<version>/bin) or set POSTGRES_BIN_DIR=<dir with initdb and postgres> to run the Postgres fault suites';

/** The folder holding initdb and postgres (POSTGRES_BIN_DIR, else the newest /usr/lib/postgresql/<version>/bin), or null. */
export function postgresBinDir(): string | null {
  const hasBinaries = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));
  const fromEnv = process.env.POSTGRES_BIN_DIR;
  if (fromEnv) return hasBinaries(fromEnv) ? fromEnv : null;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((name) => /^\d+(\.\d+)?$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(root, version, 'bin');
    if (hasBinaries(dir)) return dir;
  }
  return null;
}

export type StopMode = 'fast' | 'immediate';

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  readonly frozen: boolean;
  /** The postmaster's pid while it runs. */
  readonly pid: number | null;
  /** The last lines the server wrote (its log goes to stderr). */
  log(): string;
  /** Shut down: `fast` (SIGINT: sessions are terminated, a clean checkpoint) or `immediate` (SIGQUIT: a crash, recovery at the next start). */
  stop(options?: { mode?: StopMode }): Promise<void>;
  /** Start again on the same port and data folder; resolves once it accepts queries. */
  start(): Promise<void>;
  /** SIGSTOP the postmaster and every backend: connections stay open, nothing answers. */
  freeze(): void;
  /** SIGCONT them all. */
  thaw(): void;
  /** Kill it (whatever its state) and delete its folder. Safe to call twice. */
  dispose(): Promise<void>;
}

const READY_DEADLINE_MS = 90_000;
const STOP_DEADLINE_MS = 60_000;

/** Servers still running in this process, killed on exit if a test left one behind. */
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) killTree(pid, 'SIGKILL');
});

/** initdb a data folder in a temp folder and start a server on a free 127.0.0.1 port (unix socket in the temp folder). */
/**
 * Call inside describe: one private server for the whole file (started before its tests, always disposed after),
 * and its log printed after any test that failed. `afterEachTest` puts the server back (thaw, start) for the next.
 */
export function usePrivatePostgres(afterEachTest: (server: PrivatePostgres) => Promise<void> | void): () => PrivatePostgres {
  let server: PrivatePostgres | undefined;
  beforeAll(async () => {
    server = await startPrivatePostgres();
  });
  afterAll(async () => {
    await server?.dispose();
  });
  afterEach(async (context) => {
    if (!server) return;
    if (context.task.result?.state === 'fail') process.stderr.write(`private postgres log (port ${server.port}):\n${server.log()}\n`);
    await afterEachTest(server);
  });
  return () => {
    if (!server) throw new Error('usePrivatePostgres: the server is only there inside a test');
    return server;
  };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (bin === null) throw new Error(`no PostgreSQL server binaries: ${PRIVATE_POSTGRES_ENABLE_LINE}`);
  const folder = await mkdtemp(join(tmpdir(), 'sr-pg-'));
  const dataDir = join(folder, 'data');
  // Postgres refuses to run as root: as root, initdb and the server run as the postgres OS user.
  const user = process.getuid?.() === 0 ? postgresUser() : null;
  if (user) chownSync(folder, user.uid, user.gid);
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  try {
    execFileSync(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
      ...asUser,
      cwd: folder,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: READY_DEADLINE_MS,
    });
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    const output = (error as { stderr?: Buffer }).stderr?.toString('utf8') ?? '';
    throw new Error(`initdb failed in ${dataDir}: ${(error as Error).message}\n${output}`);
  }
  const port = await freePort();
  let child: ChildProcess | null = null;
  let output = '';
  let frozen = false;

  const args = [
    '-D', dataDir,
    '-p', String(port),
    '-k', folder,
    '-c', 'listen_addresses=127.0.0.1',
    // Durability against an OS crash is not what these tests are about; a stopped or killed server keeps its page cache.
    '-c', 'fsync=off',
    '-c', 'full_page_writes=off',
    '-c', 'max_connections=100',
    '-c', 'shared_buffers=16MB',
  ];

  async function start(): Promise<void> {
    if (child !== null) return;
    output = '';
    const spawned = spawn(join(bin!, 'postgres'), args, { ...asUser, cwd: folder, stdio: ['ignore', 'ignore', 'pipe'] });
    spawned.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-16_000);
    });
    child = spawned;
    if (spawned.pid !== undefined) live.add(spawned.pid);
    spawned.once('exit', () => {
      if (spawned.pid !== undefined) live.delete(spawned.pid);
      if (child === spawned) child = null;
    });
    const deadline = Date.now() + READY_DEADLINE_MS;
    for (;;) {
      if (child !== spawned) throw new Error(`postgres exited during start (port ${port}):\n${output}`);
      if (await postgresReachable(url)) return;
      if (Date.now() > deadline) throw new Error(`postgres did not accept queries on port ${port} within ${READY_DEADLINE_MS} ms:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function stop(options: { mode?: StopMode } = {}): Promise<void> {
    const running = child;
    if (running === null) return;
    if (frozen) thaw();
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(options.mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_DEADLINE_MS)));
    const result = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (result === 'late') {
      killTree(running.pid!, 'SIGKILL');
      await exited;
      throw new Error(`postgres on port ${port} did not stop (${options.mode ?? 'fast'}) within ${STOP_DEADLINE_MS} ms; killed it:\n${output}`);
    }
    // The backends leave with the postmaster; wait until none is left, so a start does not meet their shared memory.
    await waitUntil(() => childrenOf(running.pid!).length === 0, STOP_DEADLINE_MS);
    child = null;
  }

  function freeze(): void {
    const pid = child?.pid;
    if (pid === undefined) throw new Error('freeze: the private postgres is not running');
    // The postmaster first, so it forks nothing new; then its children (twice, for one forked in between).
    process.kill(pid, 'SIGSTOP');
    for (let pass = 0; pass < 2; pass++) for (const childPid of childrenOf(pid)) signal(childPid, 'SIGSTOP');
    frozen = true;
  }

  function thaw(): void {
    const pid = child?.pid;
    frozen = false;
    if (pid === undefined) return;
    for (const childPid of childrenOf(pid)) signal(childPid, 'SIGCONT');
    signal(pid, 'SIGCONT');
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await start();
  } catch (error) {
    if (child !== null) killTree((child as ChildProcess).pid!, 'SIGKILL');
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
  let disposed = false;
  return {
    url,
    port,
    get running() {
      return child !== null;
    },
    get frozen() {
      return frozen;
    },
    get pid() {
      return child?.pid ?? null;
    },
    log: () => output,
    stop,
    start,
    freeze,
    thaw,
    async dispose() {
      if (disposed) return;
      disposed = true;
      const running = child;
      if (running?.pid !== undefined) {
        const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
        killTree(running.pid, 'SIGKILL');
        await exited;
        await waitUntil(() => childrenOf(running.pid!).length === 0, 10_000).catch(() => undefined);
      }
      await rm(folder, { recursive: true, force: true });
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('running as root and there is no postgres OS user to run the private server as: create one (useradd postgres)');
  return { uid: Number(uid), gid: Number(gid) };
}


/** Direct children of `pid`, from /proc (the backends, checkpointer, walwriter… of a postmaster). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return children;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function killTree(pid: number, name: NodeJS.Signals): void {
  for (const childPid of childrenOf(pid)) signal(childPid, name);
  signal(pid, 'SIGCONT');
  signal(pid, name);
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
