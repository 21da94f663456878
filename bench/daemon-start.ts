// `npm run bench:start`: how long `supervisor-runtime daemon` on embedded PGlite takes from spawn to GET /healthz
// answering 200, with an empty data folder and with an existing one (a few supervisors to restore), and where the time
// goes (the `startMs` of the daemon's "daemon started" log line). Env: BENCH_START_RUNS (default 5 each),
// BENCH_START_SUPERVISORS (in the existing folder, default 10), BENCH_START_COMPARE (the bin/supervisor-runtime.js of
// another build, e.g. of the main branch: its runs are taken in turn with this build's, under the same load).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StartTimings } from '../src/daemon/start-daemon.js';

const RUNS = Number(process.env.BENCH_START_RUNS ?? 5);
const SUPERVISORS = Number(process.env.BENCH_START_SUPERVISORS ?? 10);
// Compiled to dist/bench/: the package's bin is two folders up.
const BIN = fileURLToPath(new URL('../../bin/supervisor-runtime.js', import.meta.url));
const COMPARE = process.env.BENCH_START_COMPARE;

interface StartRun {
  /** Spawn → the first 200 from GET /healthz. */
  healthyMs: number;
  /** CPU the daemon process had used by then (user + system, all its threads): steadier than wall time on a busy machine. */
  cpuMs: number | null;
  /** Absent from a build that does not log them. */
  steps: StartTimings | null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** User + system CPU of a process so far, from /proc (Linux; null elsewhere), at the kernel's 10 ms tick. */
function cpuMsOf(pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Start a daemon on `folder`, wait for /healthz, optionally spawn supervisors, then SIGTERM it and wait for the exit. */
async function startOnce(bin: string, folder: string, spawnSupervisors = 0): Promise<StartRun> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'daemon', '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, DATABASE_URL: '', NATS_URL: '', SUPERVISOR_RUNTIME_DATA: folder, SUPERVISOR_RUNTIME_TOKEN: '', LOG_PRETTY: 'false', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let healthyMs: number | null = null;
  let cpuMs: number | null = null;
  try {
    while (healthyMs === null) {
      if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode} before it answered:\n${output}`);
      if (performance.now() - started > 120_000) throw new Error(`the daemon did not answer GET /healthz within 120 s:\n${output}`);
      const answered = await fetch(`${url}/healthz`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (answered) {
        healthyMs = performance.now() - started;
        cpuMs = cpuMsOf(child.pid);
      }
      else await sleep(5);
    }
    for (let i = 0; i < spawnSupervisors; i++) {
      const response = await fetch(`${url}/supervisors`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `start bench ${i}` }) });
      if (response.status !== 201) throw new Error(`spawning a supervisor answered ${response.status}: ${await response.text()}`);
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const line = output.split('\n').find((text) => text.includes('"daemon started"'));
  if (!line) throw new Error(`no "daemon started" log line:\n${output}`);
  return { healthyMs, cpuMs, steps: (JSON.parse(line) as { startMs?: StartTimings }).startMs ?? null };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

function report(label: string, runs: StartRun[]): void {
  const healthy = runs.map((run) => run.healthyMs);
  const cpu = runs.flatMap((run) => (run.cpuMs === null ? [] : [run.cpuMs]));
  const steps = Object.keys(runs[0]?.steps ?? {}) as Array<keyof StartTimings>;
  const breakdown = steps.map((step) => `${step} ${median(runs.map((run) => run.steps?.[step] ?? 0)).toFixed(0)}`).join(', ');
  console.log(
    `${label}: spawn → /healthz 200 median ${median(healthy).toFixed(0)} ms (min ${Math.min(...healthy).toFixed(0)}, max ${Math.max(...healthy).toFixed(0)}, ${runs.length} runs)` +
      (cpu.length > 0 ? `, CPU by then median ${median(cpu).toFixed(0)} ms` : '') +
      (breakdown ? `; medians of the steps, ms: ${breakdown}` : ''),
  );
}

async function main(): Promise<void> {
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_START_RUNS must be a whole number of runs, 1 or more (got "${process.env.BENCH_START_RUNS}")`);
  const cpu = cpus();
  console.log(`machine: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}, node ${process.version}`);
  const folders: string[] = [];
  const folder = () => {
    const created = mkdtempSync(join(tmpdir(), 'sr-start-bench-'));
    folders.push(created);
    return created;
  };
  try {
    // Taken in turn, so a change in the machine's load falls on every build and folder alike.
    const builds = [{ label: 'this build', bin: BIN }, ...(COMPARE ? [{ label: COMPARE, bin: COMPARE }] : [])].map((build) => ({
      ...build,
      existing: folder(),
      empty: [] as StartRun[],
      reused: [] as StartRun[],
    }));
    for (const build of builds) await startOnce(build.bin, build.existing, SUPERVISORS);
    for (let i = 0; i < RUNS; i++) {
      for (const build of builds) {
        build.empty.push(await startOnce(build.bin, folder()));
        build.reused.push(await startOnce(build.bin, build.existing));
      }
    }
    for (const build of builds) {
      const of = builds.length > 1 ? `${build.label}, ` : '';
      report(`${of}empty data folder`, build.empty);
      report(`${of}existing data folder (${SUPERVISORS} supervisors)`, build.reused);
    }
  } finally {
    for (const created of folders) rmSync(created, { recursive: true, force: true });
  }
  console.log(`load average at the end: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
