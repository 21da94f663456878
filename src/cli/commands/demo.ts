// `supervisor-runtime demo` (npm run demo): kill -9 a daemon in mid flight on the embedded default, start it again,
// show what the restoration protocol did, finish the work, and check that nothing was lost.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { SupervisorListResponse, SupervisorView } from '../../api/views.js';
import type { ConversationEntry } from '../../domain/conversation.js';
import type { RestorationInfo } from '../../domain/restoration.js';
import { packageRoot } from '../../persistence/package-root.js';
import type { RestoreAllSummary } from '../../runtime/restoration.js';
import type { CliCommand, CliIo } from '../command.js';
import { formatRestorationTable } from '../format-restoration.js';
import { formatSupervisorTable } from './status.js';
import { createDaemonClient, type DaemonClient } from './http-client.js';

const NAMES = ['research-assistant', 'release-manager', 'incident-triage'];
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(address && typeof address === 'object' ? address.port : 0));
    });
  });
}

interface DemoDaemon {
  child: ChildProcess;
  client: DaemonClient;
}

async function startDaemon(dataDir: string, port: number, logPath: string): Promise<DemoDaemon> {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'supervisor-runtime.js'), 'daemon', '--host', '127.0.0.1', '--port', String(port)], {
    env: {
      ...process.env,
      DATABASE_URL: '',
      NATS_URL: '',
      SUPERVISOR_RUNTIME_TOKEN: '',
      SUPERVISOR_RUNTIME_DATA: dataDir,
      SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'true',
      // Tasks long enough to be in flight when the daemon is killed.
      SUPERVISOR_RUNTIME_WORKER_MIN_MS: '2500',
      SUPERVISOR_RUNTIME_WORKER_MAX_MS: '5000',
      SUPERVISOR_RUNTIME_HEARTBEAT_MS: '2000',
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const client = createDaemonClient({ url: `http://127.0.0.1:${port}`, token: undefined }, 5_000);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the daemon exited with code ${child.exitCode}; see ${logPath}`);
    try {
      await client.get('/healthz');
      return { child, client };
    } catch {
      await sleep(150);
    }
  }
  child.kill('SIGKILL');
  throw new Error(`the daemon did not become healthy within 60 s; see ${logPath}`);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((done) => child.once('exit', () => done()));
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function runDemo(io: CliIo, options: { keep: boolean; dataDir?: string | undefined }): Promise<number> {
  const started = Date.now();
  const dataDir = resolve(options.dataDir ?? mkdtempSync(join(tmpdir(), 'supervisor-runtime-demo-')));
  const logPath = join(dataDir, 'daemon.log');
  const port = await freePort();
  const say = (text: string) => io.out(`${text}\n`);
  const step = (text: string) => say(`\n==> ${text}`);
  const checks: Array<[boolean, string]> = [];
  const check = (ok: boolean, text: string) => checks.push([ok, text]);

  step(`Starting a daemon on embedded PGlite (${dataDir}) with the in-process bus and a task worker: no servers needed`);
  let daemon = await startDaemon(dataDir, port, logPath);
  say(`    daemon pid ${daemon.child.pid} at http://127.0.0.1:${port} (logs: ${logPath})`);

  step('Spawning three supervisors with the scripted agent driver (each spawns 2 tasks and asks its human 1 question)');
  const ids: string[] = [];
  for (const name of NAMES) ids.push((await daemon.client.post<SupervisorView>('/supervisors', { name, driver: 'scripted' })).id);
  const names = new Map(ids.map((id, index) => [id, NAMES[index] ?? id]));
  const beforeKill = await until('every supervisor to ask its question', 20_000, async () => {
    const list = await daemon.client.get<SupervisorListResponse>('/supervisors');
    const ours = list.supervisors.filter((s) => ids.includes(s.id));
    return ours.length === ids.length && ours.every((s) => s.pendingQuestions.length > 0) ? ours : undefined;
  });
  io.out(formatSupervisorTable({ supervisors: beforeKill, invalid: [] }));
  const tasksBefore = new Map(beforeKill.map((s) => [s.id, s.spawnedTaskIds]));
  const questionsBefore = new Map(beforeKill.map((s) => [s.id, s.pendingQuestions.map((q) => q.id)]));

  step(`Killing the daemon with SIGKILL in mid flight (tasks running, ${beforeKill.length} questions unanswered)`);
  daemon.child.kill('SIGKILL');
  await exited(daemon.child);
  say(`    pid ${daemon.child.pid} is gone (signal ${daemon.child.signalCode})`);

  step('Starting the daemon again: it restores every supervisor through the restoration protocol before it serves');
  daemon = await startDaemon(dataDir, port, logPath);
  const summary = await daemon.client.get<RestoreAllSummary>('/restorations');
  io.out(formatRestorationTable(summary.results, names));
  const first = summary.results.find((info) => info.supervisorId === ids[0]);
  if (first) say(`\n    The restoration context message handed to ${names.get(first.supervisorId)}'s LLM:\n${first.contextMessage.replace(/^/gm, '      ')}`);
  check(summary.restored === ids.length && summary.failed.length === 0, `all ${ids.length} supervisors restored (${summary.restored} restored, ${summary.failed.length} failed)`);
  for (const id of ids) {
    const info: RestorationInfo | undefined = summary.results.find((result) => result.supervisorId === id);
    const asked = questionsBefore.get(id) ?? [];
    check(
      info?.recoveryAction === 'restore' && info.restorationCount === 1 && info.source === 'daemon_restart',
      `${names.get(id)}: restored from its last save point (restoration #${info?.restorationCount ?? '?'}, ${info?.recoveryAction ?? 'missing'})`,
    );
    check(
      asked.length > 0 && asked.every((qid) => info?.questionsRedelivered.some((q) => q.id === qid && q.deliveryCount === 2)),
      `${names.get(id)}: its unanswered question was re-delivered (delivery 2)`,
    );
  }

  step('Answering the open questions, as the human would');
  const open = await daemon.client.get<SupervisorListResponse>('/supervisors?pendingQuestions=true');
  for (const supervisor of open.supervisors.filter((s) => ids.includes(s.id))) {
    for (const question of supervisor.pendingQuestions) {
      const answer = question.choices?.[0] ?? 'yes';
      await daemon.client.post(`/supervisors/${supervisor.id}/questions/${question.id}/answer`, { answer });
      say(`    ${names.get(supervisor.id)}: "${question.question}" -> ${answer}`);
    }
  }

  step('Letting the tasks finish (re-dispatched after the restart) and the supervisors complete');
  const finished = await until('every supervisor to complete', 45_000, async () => {
    const list = await daemon.client.get<SupervisorListResponse>('/supervisors');
    const ours = list.supervisors.filter((s) => ids.includes(s.id));
    return ours.every((s) => s.state === 'completed' || s.state === 'failed') ? ours : undefined;
  }).catch(async (error: unknown) => {
    check(false, String(error instanceof Error ? error.message : error));
    return (await daemon.client.get<SupervisorListResponse>('/supervisors')).supervisors.filter((s) => ids.includes(s.id));
  });
  io.out(formatSupervisorTable({ supervisors: finished, invalid: [] }));

  for (const supervisor of finished) {
    const name = names.get(supervisor.id);
    const conversation = (await daemon.client.get<{ entries: ConversationEntry[] }>(`/supervisors/${supervisor.id}/conversation`)).entries;
    const tasks = tasksBefore.get(supervisor.id) ?? [];
    check(supervisor.state === 'completed', `${name}: completed`);
    check(
      tasks.length === 2 && tasks.every((taskId) => conversation.filter((entry) => entry.role === 'tool' && entry.content.startsWith(`Task ${taskId} `)).length === 1),
      `${name}: each of its ${tasks.length} tasks finished exactly once (none lost, none applied twice)`,
    );
    check(conversation.some((entry) => entry.role === 'system' && entry.content.startsWith('[Restoration notice]')), `${name}: its conversation kept every entry plus the restoration notice (${conversation.length} entries)`);
    check(conversation.some((entry) => entry.role === 'user'), `${name}: the answer reached its conversation`);
  }

  step(`Summary (${Math.round((Date.now() - started) / 100) / 10} s)`);
  for (const [ok, text] of checks) say(`    ${ok ? '✓' : '✗'} ${text}`);
  const failed = checks.filter(([ok]) => !ok).length;
  say(failed === 0 ? '\n    Nothing was lost.' : `\n    ${failed} check(s) failed: see ${logPath}`);

  const dashboard = `http://127.0.0.1:${port}/dashboard`;
  if (options.keep) {
    say(`\nDashboard: ${dashboard}\nThe daemon keeps running so you can look around; press Ctrl-C to stop it.`);
    await new Promise<void>((done) => {
      const stop = () => done();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  } else {
    say(`\nDashboard (while a daemon runs on this data folder): ${dashboard}\nRun it again with: supervisor-runtime daemon --port ${port} --data-dir ${dataDir}`);
  }
  daemon.child.kill('SIGTERM');
  await exited(daemon.child);
  return failed === 0 ? 0 : 1;
}

export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'kill -9 a daemon in mid flight, restore it, finish the work and check nothing was lost (no servers needed)',
  help: `Usage: supervisor-runtime demo [--keep | --no-keep] [--data-dir DIR]

Starts a daemon child on embedded PGlite, spawns three scripted supervisors that spawn tasks and ask
questions, kills the daemon with SIGKILL while tasks run and questions are open, starts it again,
prints every RestorationInfo, answers the questions, waits for completion and checks the result
itself (exit 1 if anything was lost). Takes well under a minute.
  --keep       keep the daemon running afterwards for the dashboard (default when run in a terminal)
  --no-keep    stop the daemon and exit when done (default otherwise)
  --data-dir   where to keep the demo's PGlite data (default: a new temporary folder)`,
  options: { keep: { type: 'boolean' }, 'no-keep': { type: 'boolean' }, 'data-dir': { type: 'string' } },
  async run({ values }, io) {
    const keep = values['no-keep'] ? false : values.keep === true || (process.stdout.isTTY === true && process.stdin.isTTY === true);
    return runDemo(io, { keep, dataDir: values['data-dir'] as string | undefined });
  },
};
