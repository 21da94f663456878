// Runs the built daemon as a real child process on a free port, with a database of its own, and stops it by signal.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { seedDataFolder } from './pglite-template.js';
import { afterAll, beforeAll } from 'vitest';
import { TEST_DATABASE_URL, type DatabaseTarget } from './databases.js';
import { freePort } from './nats-server.js';
import { BIN, waitForExit } from './processes.js';

export interface DaemonProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the daemon wrote to stdout and stderr so far. */
  logs(): string;
  /** Send the signal (default SIGTERM) and wait for the exit; resolves at once when it already exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
}

export interface DaemonProcessOptions {
  env?: Record<string, string | undefined>;
  args?: string[];
  /** How long to wait for GET /healthz to answer 200 (default 30 s). */
  readyTimeoutMs?: number;
  /** 'serving': any answer from GET /healthz will do (a daemon started while a server it needs is down answers 503). */
  ready?: 'healthy' | 'serving';
}

/** A port nothing listens on right now (one implementation for every helper). */
export { freePort };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function healthy(url: string, ready: 'healthy' | 'serving' = 'healthy'): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return ready === 'serving' || response.status === 200;
  } catch {
    return false;
  }
}

async function startOnce(options: DaemonProcessOptions): Promise<DaemonProcess | 'port-taken'> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [BIN, 'daemon', '--host', '127.0.0.1', '--port', String(port), ...(options.args ?? [])], {
    // The outer environment must not leak a real NATS, a token or a database into the daemon unless the test says so,
    // and no embedded worker finishes tasks behind the test's back unless it asks for one.
    env: { ...process.env, LOG_PRETTY: 'false', NATS_URL: '', SUPERVISOR_RUNTIME_TOKEN: '', SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const started = Date.now();
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const code = await waitForExit(child, 15_000);
    return { code, ms: Date.now() - started };
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      // Another process may have taken the port between freePort() and listen(): try a new one.
      if (/already in use/.test(output)) return 'port-taken';
      throw new Error(`the daemon exited with ${child.exitCode ?? child.signalCode} before it was healthy:\n${output}`);
    }
    if (await healthy(url, options.ready)) return { url, port, child, logs: () => output, stop };
    await sleep(100);
  }
  await stop('SIGKILL');
  throw new Error(`the daemon did not answer GET /healthz with 200 within ${options.readyTimeoutMs ?? 30_000} ms:\n${output}`);
}

/** Start `supervisor-runtime daemon` on a free port and resolve once GET /healthz answers 200. */
export async function startDaemonProcess(options: DaemonProcessOptions = {}): Promise<DaemonProcess> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const daemon = await startOnce(options);
    if (daemon !== 'port-taken') return daemon;
  }
  throw new Error('could not find a free port for the daemon in 3 attempts');
}

export interface DaemonDatabase {
  /** Environment that points a daemon at this database (and nothing else). */
  env: Record<string, string>;
  /** Postgres URL, or the PGlite data folder. */
  description: string;
  cleanup(): Promise<void>;
}

let created = 0;

/**
 * A database of its own for the daemons of one test file: a fresh PGlite data folder, or a fresh Postgres database
 * (dropped WITH (FORCE) by cleanup, so connections a killed daemon left behind do not block it).
 */
export async function createDaemonDatabase(target: DatabaseTarget, prefix = 'sr_api'): Promise<DaemonDatabase> {
  if (target.name === 'pglite') {
    const folder = mkdtempSync(join(tmpdir(), `${prefix.replace(/_/g, '-')}-`));
    await seedDataFolder(folder);
    return {
      env: { SUPERVISOR_RUNTIME_DATA: folder, DATABASE_URL: '' },
      description: folder,
      cleanup: async () => rmSync(folder, { recursive: true, force: true }),
    };
  }
  created += 1;
  const name = `${prefix}_${process.pid}_${created}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: target.url ?? TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(target.url ?? TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    description: url.toString(),
    cleanup: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** Call the daemon's API with JSON; throws with the status and body when the answer is not 2xx. */
/**
 * The environment of one daemon of several sharing a database and a NATS subject prefix, with short leases and no
 * heartbeat saves of its own (every save point one makes is one the test caused, and nothing is written behind it).
 */
export function clusterDaemonEnv(
  cluster: { database: DaemonDatabase; natsUrl: string; prefix: string; leaseTtlMs: number; renewMs: number },
  daemonId: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...cluster.database.env,
    NATS_URL: cluster.natsUrl,
    SUPERVISOR_RUNTIME_SUBJECT_PREFIX: cluster.prefix,
    SUPERVISOR_RUNTIME_DAEMON_ID: daemonId,
    SUPERVISOR_RUNTIME_LEASE_TTL_MS: String(cluster.leaseTtlMs),
    SUPERVISOR_RUNTIME_LEASE_RENEW_MS: String(cluster.renewMs),
    SUPERVISOR_RUNTIME_HEARTBEAT_MS: '3600000',
    ...extra,
  };
}

export async function daemonRequest<T>(daemon: Pick<DaemonProcess, 'url'>, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${daemon.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as T;
  if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/**
 * One daemon for a describe block: a database of its own, the daemon started before the block's first test, then
 * stopped with `stopSignal` (default SIGTERM) and the database dropped after its last. Use the returned object only
 * inside tests.
 */
export function useDaemon(
  target: DatabaseTarget,
  prefix: string,
  options: { env?: Record<string, string>; stopSignal?: NodeJS.Signals } = {},
): DaemonProcess {
  let database: DaemonDatabase | undefined;
  let current: DaemonProcess | undefined;
  beforeAll(async () => {
    database = await createDaemonDatabase(target, prefix);
    current = await startDaemonProcess({ env: { ...database.env, ...options.env } });
  });
  afterAll(async () => {
    await current?.stop(options.stopSignal ?? 'SIGTERM');
    await database?.cleanup();
  });
  const live = (): DaemonProcess => {
    if (!current) throw new Error('useDaemon: the daemon only runs inside the tests of its describe block');
    return current;
  };
  return {
    get url() {
      return live().url;
    },
    get port() {
      return live().port;
    },
    get child() {
      return live().child;
    },
    logs: () => live().logs(),
    stop: (signal) => live().stop(signal),
  };
}
