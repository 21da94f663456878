// Real nats-server processes for tests: reachability of the shared server, and private servers that tests stop, kill and restart.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_ENABLE_LINE = 'start nats-server -js on 127.0.0.1:4222 or set NATS_URL to run them';

/** The shared server the NATS suites use. */
export function natsUrlForTests(): string {
  return process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
}

/** The nats-server binary for suites that start their own, or null when there is none. */
export function natsServerBinary(): string | null {
  const candidates = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server'];
  return candidates.find((path): path is string => typeof path === 'string' && path !== '' && existsSync(path)) ?? null;
}

/** True when a NATS server with JetStream enabled answers at `url` (its INFO line says "jetstream":true). */
export function natsAvailable(url: string = natsUrlForTests(), timeoutMs = 1_000): Promise<boolean> {
  const { hostname, port } = new URL(url.split(',')[0]!.trim().replace(/^nats:/, 'http:'));
  return new Promise((resolve) => {
    const socket = netConnect({ host: hostname, port: Number(port || 4222) });
    let received = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.includes('\r\n')) done(received.startsWith('INFO ') && /"jetstream"\s*:\s*true/.test(received));
    });
  });
}

export interface TestNatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Graceful stop (SIGTERM); resolves when the process has exited. */
  stop(): Promise<void>;
  /** Start again on the same port and store directory, so JetStream data survives. */
  start(): Promise<void>;
  /** SIGKILL, like a crash. */
  kill(): Promise<void>;
  /** Kill it and delete its store directory. */
  dispose(): Promise<void>;
}

/** Spawns `nats-server -js` on a free port with a fresh store directory and waits until it accepts connections. */
export async function startNatsServer(): Promise<TestNatsServer> {
  const binary = natsServerBinary();
  if (binary === null) throw new Error('nats-server binary not found; install it or set NATS_SERVER_BIN');
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'sr-nats-'));
  let child: ChildProcess | null = null;
  let output = '';

  async function start(): Promise<void> {
    if (child !== null) return;
    output = '';
    const spawned = spawn(binary!, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    spawned.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
    });
    child = spawned;
    spawned.once('exit', () => {
      if (child === spawned) child = null;
    });
    await waitForPort(port, 10_000, () => (child === spawned ? null : `nats-server exited during start:\n${output}`));
  }

  async function signal(name: NodeJS.Signals): Promise<void> {
    const running = child;
    if (running === null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(name);
    await exited;
    child = null;
  }

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    start,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async dispose() {
      await signal('SIGKILL');
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** Ask the OS for a free port: listen on port 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, failure: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const problem = failure();
    if (problem !== null) throw new Error(problem);
    if (await natsAvailable(`nats://127.0.0.1:${port}`, 500)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not accept connections on port ${port} within ${timeoutMs} ms`);
}
