// Restoration over HTTP against a real daemon process, on every database: POST /supervisors/:id/resume, GET /restorations
// after a kill -9 and restart, and GET /healthz while the daemon's NATS server is down (Postgres only).

import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiErrorBody } from '../../src/api/errors.js';
import type { HealthResponse, QuestionAskedResponse, SupervisorView, TaskResponse } from '../../src/api/views.js';
import type { RestorationInfo } from '../../src/domain/restoration.js';
import type { RestoreAllSummary } from '../../src/runtime/restoration.js';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, startDaemonProcess, useDaemon, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { natsServerBinary, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

type ErrorBody = ApiErrorBody & Record<string, unknown>;

interface Answer<T> {
  status: number;
  body: T;
}

async function call<T = ErrorBody>(daemon: Pick<DaemonProcess, 'url'>, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer<T>> {
  const response = await fetch(`${daemon.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ask GET /healthz every 100 ms until it answers `status`; returns that answer, or throws with the last one. */
async function healthzUntil(daemon: DaemonProcess, status: number, timeoutMs: number): Promise<Answer<HealthResponse>> {
  const deadline = Date.now() + timeoutMs;
  let last: Answer<HealthResponse> | string = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      last = await call<HealthResponse>(daemon, 'GET', '/healthz');
      if (last.status === status) return last;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`GET /healthz did not answer ${status} within ${timeoutMs} ms; last: ${JSON.stringify(last)}\n${daemon.logs().slice(-2_000)}`);
}

const targets = await databaseTargets();

for (const target of targets) {
  describe(`POST /supervisors/:id/resume on a daemon on ${target.name}`, () => {
    const daemon = useDaemon(target, 'sr_resume', { stopSignal: 'SIGKILL' });

    it('restores a live supervisor with a running task and a pending question: the question is delivered again, the task kept', async () => {
      const created = await call<SupervisorView>(daemon, 'POST', '/supervisors', { name: 'resumed by hand', driver: 'manual' });
      expect(created.status).toBe(201);
      const id = created.body.id;
      const task = await call<TaskResponse>(daemon, 'POST', `/supervisors/${id}/tasks`, { description: 'index the repository' });
      expect(task.status).toBe(201);
      const asked = await call<QuestionAskedResponse>(daemon, 'POST', `/supervisors/${id}/questions`, { question: 'Which branch should I release?', choices: ['main', 'next'] });
      expect(asked.status).toBe(201);
      expect(asked.body.supervisor.state).toBe('waiting_for_user');
      expect(asked.body.supervisor.pendingQuestions).toEqual([expect.objectContaining({ id: asked.body.questionId, deliveryCount: 1 })]);

      const resumed = await call<RestorationInfo>(daemon, 'POST', `/supervisors/${id}/resume`);
      expect(resumed.status).toBe(200);
      const info = resumed.body;
      expect(info).toMatchObject({
        supervisorId: id,
        source: 'manual',
        recoveryAction: 'restore',
        restoredState: 'waiting_for_user',
        checkpointSeq: null,
        restorationCount: 1,
        validation: { valid: true },
      });
      expect(info.questionsRedelivered).toEqual([expect.objectContaining({ id: asked.body.questionId, question: 'Which branch should I release?', deliveryCount: 2 })]);
      expect(info.tasksResumed).toContain(task.body.taskId);
      expect(info.tasksReconciled).toContainEqual(expect.objectContaining({ taskId: task.body.taskId, status: 'running', action: 'resumed', outcome: null }));
      expect(info.contextMessage).toContain('Which branch should I release?');
      expect(info.contextMessage).toContain(task.body.taskId);
      expect(info.contextMessage).toMatch(/an operator asked for you to be resumed/);
      expect(typeof info.durationMs).toBe('number');

      const shown = await call<SupervisorView>(daemon, 'GET', `/supervisors/${id}`);
      expect(shown.status).toBe(200);
      expect(shown.body).toMatchObject({ id, state: 'waiting_for_user', restorationCount: 1, restorationSource: 'manual', live: true, spawnedTaskIds: [task.body.taskId] });
      expect(shown.body.lastRestoredAt).not.toBeNull();
      expect(shown.body.pendingQuestions).toEqual([expect.objectContaining({ id: asked.body.questionId, deliveryCount: 2 })]);

      const again = await call<RestorationInfo>(daemon, 'POST', `/supervisors/${id}/resume`);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ supervisorId: id, source: 'manual', recoveryAction: 'restore', restorationCount: 2 });
      expect(again.body.questionsRedelivered).toEqual([expect.objectContaining({ id: asked.body.questionId, deliveryCount: 3 })]);
      expect((await call<SupervisorView>(daemon, 'GET', `/supervisors/${id}`)).body).toMatchObject({ restorationCount: 2, restorationSource: 'manual', live: true });

      // The restored actor still takes events: the answer is applied once.
      const answered = await call<SupervisorView>(daemon, 'POST', `/supervisors/${id}/questions/${asked.body.questionId}/answer`, { answer: 'main' });
      expect(answered.status).toBe(200);
      expect(answered.body).toMatchObject({ state: 'waiting_for_tasks', pendingQuestions: [] });
    });

    it('an unknown id is 404 SupervisorNotFoundError and a malformed one 400', async () => {
      const unknown = await call(daemon, 'POST', `/supervisors/${UNKNOWN_ID}/resume`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toMatchObject({ error: 'SupervisorNotFoundError', supervisorId: UNKNOWN_ID });
      expect(unknown.body.message).toMatch(new RegExp(`Supervisor ${UNKNOWN_ID} does not exist`));
      const malformed = await call(daemon, 'POST', '/supervisors/not-a-uuid/resume');
      expect(malformed.status).toBe(400);
      expect(malformed.body.message).toMatch(/params\.id must be a UUID/);
    });

    it('without a token it answers only requests addressed to this machine by name: another Host is 403 (DNS rebinding), and nothing runs', async () => {
      const port = new URL(daemon.url).port;
      const ask = (host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const request = httpRequest({ host: '127.0.0.1', port, path: '/supervisors', method: 'GET', headers: { host } }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          });
          request.on('error', reject);
          request.end();
        });
      const rebound = await ask(`attacker.example:${port}`);
      expect(rebound.status).toBe(403);
      expect(JSON.parse(rebound.body)).toMatchObject({ error: 'ForbiddenHostError', host: `attacker.example:${port}` });
      expect((await ask(`localhost:${port}`)).status).toBe(200);
      expect((await ask(`127.0.0.1:${port}`)).status).toBe(200);
    });

    it('{"startFreshIfMissing": true} starts a fresh supervisor under an unknown id, stamped manual and owned by this daemon; a bad body is 400 and starts nothing', async () => {
      const id = '00000000-0000-4000-8000-00000000f00d';
      const bad = await call(daemon, 'POST', `/supervisors/${id}/resume`, { startFreshIfMissing: 'yes', extra: 1 });
      expect(bad.status).toBe(400);
      expect(bad.body.problems).toEqual(['body.extra is not an accepted field', 'body.startFreshIfMissing must be true or false']);
      expect((await call(daemon, 'GET', `/supervisors/${id}`)).status).toBe(404);

      const fresh = await call<RestorationInfo>(daemon, 'POST', `/supervisors/${id}/resume`, { startFreshIfMissing: true });
      expect(fresh.status).toBe(200);
      expect(fresh.body).toMatchObject({ supervisorId: id, source: 'manual', recoveryAction: 'start_fresh', restoredState: 'idle', restorationCount: 1 });
      const daemons = await call<{ self: string; daemons: Array<{ daemonId: string; live: boolean; url: string; supervisors: number }> }>(daemon, 'GET', '/daemons');
      const view = await call<SupervisorView>(daemon, 'GET', `/supervisors/${id}`);
      expect(view.body).toMatchObject({ live: true, owner: daemons.body.self, restorationSource: 'manual' });
      expect(daemons.body.daemons).toContainEqual(expect.objectContaining({ daemonId: daemons.body.self, live: true, url: daemon.url }));
      expect(daemon.logs()).toMatch(/no stored state for this id: starting a fresh supervisor under it/);
    });
  });

  describe(`GET /restorations on a daemon on ${target.name}`, () => {
    let database: DaemonDatabase;
    let daemon: DaemonProcess | undefined;

    beforeAll(async () => {
      database = await createDaemonDatabase(target, 'sr_restorations');
    });
    afterAll(async () => {
      await daemon?.stop('SIGKILL');
      await database?.cleanup();
    });

    it('is empty on a fresh daemon; after kill -9 and a restart on the same database it reports the supervisor it restored', { timeout: 120_000 }, async () => {
      const first = await startDaemonProcess({ env: database.env });
      daemon = first;
      const empty = await call<RestoreAllSummary>(first, 'GET', '/restorations');
      expect(empty.status).toBe(200);
      expect(empty.body).toMatchObject({ total: 0, restored: 0, fromCheckpoint: 0, startedFresh: 0, failed: [], results: [] });

      const created = await call<SupervisorView>(first, 'POST', '/supervisors', { name: 'survives kill -9', driver: 'manual' });
      expect(created.status).toBe(201);
      await first.stop('SIGKILL');

      const second = await startDaemonProcess({ env: database.env });
      daemon = second;
      const summary = await call<RestoreAllSummary>(second, 'GET', '/restorations');
      expect(summary.status).toBe(200);
      expect(summary.body).toMatchObject({ total: 1, restored: 1, fromCheckpoint: 0, startedFresh: 0, failed: [] });
      expect(summary.body.results).toHaveLength(1);
      expect(summary.body.results[0]).toMatchObject({ supervisorId: created.body.id, source: 'daemon_restart', recoveryAction: 'restore', restorationCount: 1 });
      const shown = await call<SupervisorView>(second, 'GET', `/supervisors/${created.body.id}`);
      expect(shown.body).toMatchObject({ restorationCount: 1, restorationSource: 'daemon_restart', live: true });
    });
  });
}

const postgres = targets.find((target) => target.name === 'postgres');
if (postgres) {
  const gate = serverGate('nats-server binary', natsServerBinary() !== null, 'install nats-server or set NATS_SERVER_BIN to run the NATS fault suites');
  (gate.run ? describe : describe.skip)('GET /healthz of a daemon on Postgres whose NATS server goes down and comes back', () => {
    let database: DaemonDatabase | undefined;
    let server: TestNatsServer | undefined;
    let daemon: DaemonProcess | undefined;

    afterAll(async () => {
      await daemon?.stop('SIGKILL');
      await server?.dispose();
      await database?.cleanup();
    });

    it('answers 503 with transport.ok false while NATS is down, and 200 again after it is back', { timeout: 90_000 }, async () => {
      database = await createDaemonDatabase(postgres, 'sr_healthz');
      server = await startNatsServer();
      daemon = await startDaemonProcess({
        env: { ...database.env, NATS_URL: server.url, SUPERVISOR_RUNTIME_SUBJECT_PREFIX: `hz${process.pid}.`, SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false' },
      });

      const up = await call<HealthResponse>(daemon, 'GET', '/healthz');
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({ ok: true, database: { ok: true, kind: 'postgres' }, transport: { ok: true, kind: 'nats' } });

      await server.stop();
      const down = await healthzUntil(daemon, 503, 10_000);
      expect(down.body).toMatchObject({ ok: false, database: { ok: true, kind: 'postgres' }, transport: { ok: false, kind: 'nats' } });
      expect(down.body.transport.detail).toEqual(expect.any(String));

      await server.start();
      const back = await healthzUntil(daemon, 200, 15_000);
      expect(back.body).toMatchObject({ ok: true, database: { ok: true }, transport: { ok: true, kind: 'nats' } });
    });
  });
}
