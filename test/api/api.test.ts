// The HTTP API of a real daemon process, on every database: each route, each error status, a full flow, and SIGTERM.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiErrorBody } from '../../src/api/errors.js';
import type { CheckpointListResponse, HealthResponse, QuestionAskedResponse, SupervisorListResponse, SupervisorView, TaskResponse } from '../../src/api/views.js';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';

const TOKEN = `token-${randomUUID()}`;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

type ErrorBody = ApiErrorBody & Record<string, unknown>;

const targets = await databaseTargets();

for (const target of targets) {
  describe(`HTTP API of a daemon on ${target.name}`, () => {
    let database: DaemonDatabase;
    let daemon: DaemonProcess;

    beforeAll(async () => {
      database = await createDaemonDatabase(target);
      daemon = await startDaemonProcess({ env: { ...database.env, SUPERVISOR_RUNTIME_TOKEN: TOKEN } });
    });
    afterAll(async () => {
      await daemon?.stop('SIGKILL');
      await database?.cleanup();
    });

    async function call<T = ErrorBody>(method: 'GET' | 'POST', path: string, body?: unknown, options: { token?: string | null; raw?: string } = {}): Promise<Answer<T>> {
      const headers: Record<string, string> = {};
      const token = options.token === undefined ? TOKEN : options.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(`${daemon.url}${path}`, { method, headers, body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
      return { status: response.status, body: (await response.json()) as T, headers: response.headers };
    }

    const get = <T = ErrorBody>(path: string, options?: { token?: string | null }) => call<T>('GET', path, undefined, options);
    const post = <T = ErrorBody>(path: string, body: unknown, options?: { token?: string | null; raw?: string }) => call<T>('POST', path, body, options);

    async function spawnSupervisor(name = 'api test'): Promise<SupervisorView> {
      const created = await post<SupervisorView>('/supervisors', { name, driver: 'manual' });
      expect(created.status).toBe(201);
      return created.body;
    }

    it('GET /healthz answers 200 without a token, naming the database and the transport', async () => {
      const health = await get<HealthResponse>('/healthz', { token: null });
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ ok: true, database: { ok: true, kind: target.name }, transport: { ok: true, kind: 'in-process' } });
    });

    it('every other route answers 401 without the token or with a wrong one, and changes nothing', async () => {
      const before = (await get<SupervisorListResponse>('/supervisors')).body.supervisors.length;
      for (const token of [null, 'wrong-token']) {
        const list = await get('/supervisors', { token });
        expect(list.status).toBe(401);
        expect(list.body.error).toBe('UnauthorizedError');
        expect(list.body.message).toMatch(/Authorization: Bearer/);
        expect(list.headers.get('www-authenticate')).toBe('Bearer');
        expect((await post('/supervisors', { name: 'intruder' }, { token })).status).toBe(401);
        expect((await get(`/supervisors/${UNKNOWN_ID}`, { token })).status).toBe(401);
      }
      expect((await get<SupervisorListResponse>('/supervisors')).body.supervisors.length).toBe(before);
    });

    it('POST /supervisors answers 201 with the stored state of a supervisor that was STARTed (idle, live)', async () => {
      const id = randomUUID();
      const created = await post<SupervisorView>('/supervisors', { id, name: 'explicit id', phase: 'design', driver: 'manual' });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ id, name: 'explicit id', state: 'idle', phase: 'design', driver: 'manual', live: true, pendingQuestions: [], spawnedTaskIds: [] });
      expect(created.body.checkpointSeq).toBeGreaterThanOrEqual(2);
    });

    it('POST /supervisors refuses an unknown field, an empty name, an unknown driver, a bad uuid and a taken id with 400, creating nothing', async () => {
      const taken = await spawnSupervisor('taken');
      const before = (await get<SupervisorListResponse>('/supervisors')).body.supervisors.length;
      const cases: Array<[unknown, RegExp]> = [
        [{ name: 'x', colour: 'red' }, /body\.colour is not an accepted field/],
        [{ name: '' }, /body\.name must not be empty/],
        [{ phase: 'x' }, /body\.name is required/],
        [{ name: 'x', driver: 'gpt-9' }, /^Unknown agent driver "gpt-9": this daemon has manual, scripted\. Nothing was written/],
        [{ name: 'x', id: 'not-a-uuid' }, /id must be a UUID/],
        [{ name: 'x', id: taken.id }, /id is already taken/],
      ];
      for (const [body, message] of cases) {
        const refused = await post('/supervisors', body);
        expect(refused.status, JSON.stringify(body)).toBe(400);
        expect(refused.body.message).toMatch(message);
        expect(['Bad Request', 'InvalidSupervisorDataError', 'UnknownDriverError']).toContain(refused.body.error);
      }
      expect((await get<SupervisorListResponse>('/supervisors')).body.supervisors.length).toBe(before);
      expect((await get<SupervisorView>(`/supervisors/${taken.id}`)).body.name).toBe('taken');
      // A UUID in capitals names the same supervisor, in a path or as a caller-chosen id.
      expect((await get<SupervisorView>(`/supervisors/${taken.id.toUpperCase()}`)).body).toMatchObject({ id: taken.id, name: 'taken' });
      expect((await post('/supervisors', { name: 'x', id: taken.id.toUpperCase() })).body.message).toMatch(/id is already taken/);
    });

    it('GET /supervisors lists every supervisor; ?pendingQuestions=true only those waiting on a human', async () => {
      const quiet = await spawnSupervisor('quiet');
      const asking = await spawnSupervisor('asking');
      await post(`/supervisors/${asking.id}/questions`, { question: 'Proceed?' });
      const all = await get<SupervisorListResponse>('/supervisors');
      expect(all.status).toBe(200);
      expect(all.body.invalid).toEqual([]);
      expect(all.body.supervisors.map((supervisor) => supervisor.id)).toEqual(expect.arrayContaining([quiet.id, asking.id]));
      const pending = await get<SupervisorListResponse>('/supervisors?pendingQuestions=true');
      expect(pending.body.supervisors.map((supervisor) => supervisor.id)).toContain(asking.id);
      expect(pending.body.supervisors.map((supervisor) => supervisor.id)).not.toContain(quiet.id);
      expect(pending.body.supervisors.every((supervisor) => supervisor.pendingQuestions.length > 0)).toBe(true);
      expect((await get('/supervisors?pendingQuestions=maybe')).status).toBe(400);
    });

    it('GET /supervisors/:id shows the detailed state with live: true; an unknown id is 404 and a malformed one 400', async () => {
      const supervisor = await spawnSupervisor('described');
      const shown = await get<SupervisorView>(`/supervisors/${supervisor.id}`);
      expect(shown.status).toBe(200);
      expect(shown.body).toMatchObject({ id: supervisor.id, name: 'described', state: 'idle', phase: 'planning', currentActivity: null, progress: 0, errorMessage: null, live: true });
      for (const field of ['spawnedTaskIds', 'pendingQuestions', 'restorationCount', 'lastRestoredAt', 'restorationSource', 'lastHeartbeat', 'createdAt', 'updatedAt']) {
        expect(shown.body).toHaveProperty(field);
      }
      const unknown = await get(`/supervisors/${UNKNOWN_ID}`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toMatchObject({ error: 'SupervisorNotFoundError', supervisorId: UNKNOWN_ID });
      const malformed = await get('/supervisors/not-a-uuid');
      expect(malformed.status).toBe(400);
      expect(malformed.body.message).toMatch(/params\.id must be a UUID/);
    });

    it('POST /supervisors/:id/events applies the event and answers with the state its save point committed', async () => {
      const supervisor = await spawnSupervisor('eventful');
      const working = await post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'SET_ACTIVITY', activity: 'reading the brief', progress: 20 });
      expect(working.status).toBe(200);
      expect(working.body).toMatchObject({ state: 'working', currentActivity: 'reading the brief', progress: 20 });
      const phased = await post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'execution' });
      expect(phased.body).toMatchObject({ state: 'working', phase: 'execution' });
      expect(phased.body.checkpointSeq).toBeGreaterThan(working.body.checkpointSeq);
      const asked = await post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'ASK_QUESTION', questionId: 'q-events', question: 'Ship it?', choices: ['yes', 'no'] });
      expect(asked.body.state).toBe('waiting_for_user');
      expect(asked.body.pendingQuestions).toEqual([expect.objectContaining({ id: 'q-events', question: 'Ship it?', choices: ['yes', 'no'] })]);
      const answered = await post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'ANSWER', questionId: 'q-events', answer: 'yes' });
      expect(answered.body).toMatchObject({ state: 'working', pendingQuestions: [] });
    });

    it('a bad event body is 400 naming the field (unknown field, missing field, wrong type, `at`, RESTORED, unknown type) and changes nothing', async () => {
      const supervisor = await spawnSupervisor('strict');
      const before = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      const cases: Array<[unknown, RegExp]> = [
        [{ type: 'SET_PHASE', phase: 'x', colour: 'red' }, /body\.colour is not an accepted field/],
        [{ type: 'SET_PHASE' }, /body\.phase is required/],
        [{ type: 'SET_ACTIVITY', activity: 'x', progress: '50' }, /body\.progress must be integer/],
        [{ type: 'SET_ACTIVITY', activity: 'x', progress: 101 }, /body\.progress must be <= 100/],
        [{ type: 'SET_PHASE', phase: 'x', at: '2020-01-01T00:00:00.000Z' }, /body\.at is not accepted/],
        [{ type: 'RESTORED', source: 'database', contextMessage: 'x', redeliver: false }, /RESTORED cannot be sent from outside/],
        [{ type: 'DANCE' }, /"DANCE" is not an event type; use one of START, SET_ACTIVITY/],
        [{ phase: 'x' }, /body\.type is required/],
        [['SET_PHASE'], /body must be object/],
      ];
      for (const [body, message] of cases) {
        const refused = await post(`/supervisors/${supervisor.id}/events`, body);
        expect(refused.status, JSON.stringify(body)).toBe(400);
        expect(refused.body.error).toBe('Bad Request');
        expect(refused.body.message).toMatch(message);
        expect(refused.body.message).toMatch(/Nothing was changed/);
      }
      const malformed = await post(`/supervisors/${supervisor.id}/events`, undefined, { raw: '{"type": "SET_PHASE", ' });
      expect(malformed.status).toBe(400);
      const after = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      expect({ ...after, lastHeartbeat: null, updatedAt: '' }).toEqual({ ...before, lastHeartbeat: null, updatedAt: '' });
    });

    it('a NUL character in any text field is 400 naming the field, at every route, and nothing is written', async () => {
      const supervisor = await spawnSupervisor('nul-free');
      const asked = await post<{ questionId: string }>(`/supervisors/${supervisor.id}/questions`, { question: 'Clean?' });
      const before = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      const cases: Array<[string, unknown, string]> = [
        ['/supervisors', { name: 'a\u0000b' }, 'body.name'],
        [`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'p\u0000' }, 'body.phase'],
        [`/supervisors/${supervisor.id}/questions`, { question: 'q', choices: ['ok', 'n\u0000o'] }, 'body.choices.1'],
        [`/supervisors/${supervisor.id}/questions`, { question: 'q', context: '\u0000' }, 'body.context'],
        [`/supervisors/${supervisor.id}/questions/${asked.body.questionId}/answer`, { answer: 'y\u0000es' }, 'body.answer'],
        [`/supervisors/${supervisor.id}/tasks`, { description: 'd\u0000' }, 'body.description'],
        [`/tasks/${supervisor.spawnedTaskIds[0] ?? 'some-task'}/events`, { type: 'completed', result: 'r\u0000' }, 'body.result'],
      ];
      for (const [path, body, field] of cases) {
        const refused = await post(path, body);
        expect(refused.status, path).toBe(400);
        expect(refused.body.message).toContain(`${field} contains a NUL character`);
      }
      const after = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      expect({ ...after, lastHeartbeat: null, updatedAt: '' }).toEqual({ ...before, lastHeartbeat: null, updatedAt: '' });
      const listed = await get<{ supervisors: SupervisorView[] }>('/supervisors');
      expect(listed.body.supervisors.some((view) => view.name.includes('\u0000') || view.name === 'ab')).toBe(false);
    });

    it('a lone UTF-16 surrogate in any text field is 400 naming the field, before the database sees it, and nothing is written', async () => {
      const supervisor = await spawnSupervisor('well-formed');
      const other = await spawnSupervisor('listener');
      const asked = await post<{ questionId: string }>(`/supervisors/${supervisor.id}/questions`, { question: 'Clean?' });
      const before = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      const cases: Array<[string, unknown, string]> = [
        ['/supervisors', { name: 'x\ud800y' }, 'body.name'],
        [`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: '\udc00p' }, 'body.phase'],
        [`/supervisors/${supervisor.id}/questions`, { question: 'q', choices: ['ok', 'n\ud83do'] }, 'body.choices.1'],
        [`/supervisors/${supervisor.id}/questions/${asked.body.questionId}/answer`, { answer: 'yes\ud800' }, 'body.answer'],
        [`/supervisors/${supervisor.id}/messages`, { to: other.id, body: 'hi \udfff' }, 'body.body'],
      ];
      for (const [path, body, field] of cases) {
        const refused = await post(path, body);
        expect(refused.status, path).toBe(400);
        expect(refused.body.message).toContain(`${field} contains a lone UTF-16 surrogate`);
      }
      const after = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      expect({ ...after, lastHeartbeat: null, updatedAt: '' }).toEqual({ ...before, lastHeartbeat: null, updatedAt: '' });
      // A surrogate pair (an emoji) is text like any other.
      expect((await post(`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'ship \ud83d\ude80' })).status).toBe(200);
      expect((await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body.phase).toBe('ship \u{1F680}');
    });

    it('a question or task id in the path that no id can be is 400 naming it, not "not pending" or a router error', async () => {
      const supervisor = await spawnSupervisor('path ids');
      const spaced = await post(`/supervisors/${supervisor.id}/questions/a%20b/answer`, { answer: 'x' });
      expect(spaced.status).toBe(400);
      expect(spaced.body.message).toMatch(/params.questionId must be letters, digits, _ and - only, 1 to 128 characters/);
      const withdrawn = await post(`/supervisors/${supervisor.id}/questions/${'q'.repeat(129)}/withdraw`, {});
      expect(withdrawn.status).toBe(400);
      expect(withdrawn.body.message).toMatch(/params.questionId must be letters, digits/);
      const task = await post(`/tasks/t.1/events`, { type: 'progress', progress: 5 });
      expect(task.status).toBe(400);
      expect(task.body.message).toMatch(/params.taskId must be letters, digits/);
      // Longer than any route takes: refused as such, with the API's error body.
      const huge = await post(`/supervisors/${supervisor.id}/questions/${'q'.repeat(5_000)}/answer`, { answer: 'x' });
      expect(huge.status).toBe(414);
      expect(huge.body).toMatchObject({ error: 'URI Too Long', message: expect.stringMatching(/^A path segment is longer than 256 characters; .* at most 128 characters/) });
      expect(huge.body.message.length).toBeLessThan(300);
    });

    it('an empty body labelled application/json is no body: routes whose body is optional take it, the others say what they need', async () => {
      const supervisor = await spawnSupervisor('labelled');
      const asked = await post<{ questionId: string }>(`/supervisors/${supervisor.id}/questions`, { question: 'Keep?' });
      const withdrawn = await post<SupervisorView>(`/supervisors/${supervisor.id}/questions/${asked.body.questionId}/withdraw`, undefined, { raw: '' });
      expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
      expect(withdrawn.body.pendingQuestions).toEqual([]);
      const resumed = await post<{ supervisorId: string }>(`/supervisors/${supervisor.id}/resume`, undefined, { raw: '' });
      expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
      expect(resumed.body.supervisorId).toBe(supervisor.id);
      const forked = await post<{ supervisor: SupervisorView }>(`/supervisors/${supervisor.id}/fork`, undefined, { raw: ' ' });
      expect(forked.status, JSON.stringify(forked.body)).toBe(201);
      expect(forked.body.supervisor.id).not.toBe(supervisor.id);
      const answered = await post(`/supervisors/${supervisor.id}/questions/${asked.body.questionId}/answer`, undefined, { raw: '' });
      expect(answered.status).toBe(400);
      expect(answered.body.message).toMatch(/body/);
    });

    it('an event the machine refuses is 409 with the reason and the state, and the state is unchanged; an unknown id is 404', async () => {
      const supervisor = await spawnSupervisor('refusing');
      const refused = await post(`/supervisors/${supervisor.id}/events`, { type: 'ANSWER', questionId: 'never-asked', answer: 'x' });
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ error: 'EventRefusedError', state: 'idle', eventType: 'ANSWER' });
      expect(refused.body.reason).toMatch(/not accepted in state idle/);
      await post(`/supervisors/${supervisor.id}/questions`, { question: 'Colour?', choices: ['red', 'blue'] });
      const pending = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      const wrongChoice = await post(`/supervisors/${supervisor.id}/questions/${pending.pendingQuestions[0]?.id}/answer`, { answer: 'green' });
      expect(wrongChoice.status).toBe(409);
      expect(wrongChoice.body.reason).toMatch(/not one of the choices "red", "blue"/);
      const after = (await get<SupervisorView>(`/supervisors/${supervisor.id}`)).body;
      expect(after).toMatchObject({ state: 'waiting_for_user', checkpointSeq: pending.checkpointSeq });
      expect(after.pendingQuestions).toHaveLength(1);
      const unknown = await post(`/supervisors/${UNKNOWN_ID}/events`, { type: 'START' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toBe('SupervisorNotFoundError');
    });

    it('POST /supervisors/:id/questions is 201 with the question id; a second answer is 409 carrying the first', async () => {
      const supervisor = await spawnSupervisor('asked twice');
      const asked = await post<QuestionAskedResponse>(`/supervisors/${supervisor.id}/questions`, { question: 'Which database?', choices: ['postgres', 'pglite'], context: 'for prod' });
      expect(asked.status).toBe(201);
      expect(asked.body.supervisor).toMatchObject({ id: supervisor.id, state: 'waiting_for_user' });
      expect(asked.body.supervisor.pendingQuestions).toEqual([
        expect.objectContaining({ id: asked.body.questionId, question: 'Which database?', choices: ['postgres', 'pglite'], context: 'for prod' }),
      ]);
      expect((await post(`/supervisors/${supervisor.id}/questions`, { question: 'x', choices: [] })).status).toBe(400);
      const path = `/supervisors/${supervisor.id}/questions/${asked.body.questionId}/answer`;
      const first = await post<SupervisorView>(path, { answer: 'postgres' });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ state: 'working', pendingQuestions: [] });
      const second = await post(path, { answer: 'pglite' });
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({ error: 'QuestionAlreadyAnsweredError', firstAnswer: 'postgres', questionId: asked.body.questionId });
      expect(typeof second.body.answeredAt).toBe('string');
      expect((await post(path, { answer: 'postgres', reply: 'x' })).body.message).toMatch(/body\.reply is not an accepted field/);
      // The answered question left the snapshot; GET /supervisors/:id/questions keeps it with its first answer.
      const history = await get<{ questions: Array<{ id: string; answer: string | null }> }>(`/supervisors/${supervisor.id}/questions?answered=true`);
      expect(history.status).toBe(200);
      expect(history.body.questions).toEqual([expect.objectContaining({ id: asked.body.questionId, question: 'Which database?', choices: ['postgres', 'pglite'], answer: 'postgres' })]);
      expect((await get<{ questions: unknown[] }>(`/supervisors/${supervisor.id}/questions?answered=false`)).body.questions).toEqual([]);
      expect((await get(`/supervisors/${supervisor.id}/questions?answered=maybe`)).status).toBe(400);
      expect((await get(`/supervisors/${randomUUID()}/questions`)).status).toBe(404);
    });

    it('POST /supervisors/:id/questions/:qid/withdraw takes a pending question back: a later answer is 409, so is a second withdrawal', async () => {
      const supervisor = await spawnSupervisor('withdrawn');
      const asked = await post<QuestionAskedResponse>(`/supervisors/${supervisor.id}/questions`, { question: 'Still needed?' });
      const path = `/supervisors/${supervisor.id}/questions/${asked.body.questionId}`;
      const withdrawn = await post<SupervisorView>(`${path}/withdraw`, { reason: 'the user decided' });
      expect(withdrawn.status).toBe(200);
      expect(withdrawn.body).toMatchObject({ state: 'working', pendingQuestions: [] });
      const late = await post(`${path}/answer`, { answer: 'yes' });
      expect(late.status).toBe(409);
      expect(late.body.message).toMatch(/was withdrawn at .*\(the user decided\)/);
      const again = await post(`${path}/withdraw`, {});
      expect(again.status).toBe(409);
      expect(again.body.reason).toMatch(/already withdrawn/);
      expect((await post(`${path}/withdraw`, { reason: 'x', extra: 1 })).status).toBe(400);
      const history = await get<{ questions: Array<{ id: string; withdrawnAt: string | null; withdrawnReason: string | null }> }>(`/supervisors/${supervisor.id}/questions`);
      expect(history.body.questions).toEqual([expect.objectContaining({ id: asked.body.questionId, answer: null, withdrawnReason: 'the user decided' })]);
      expect(typeof history.body.questions[0]?.withdrawnAt).toBe('string');
      expect((await get<{ questions: unknown[] }>(`/supervisors/${supervisor.id}/questions?answered=false`)).body.questions).toEqual([]);
      // The body is optional.
      const other = await post<QuestionAskedResponse>(`/supervisors/${supervisor.id}/questions`, { question: 'And this one?' });
      expect((await post<SupervisorView>(`/supervisors/${supervisor.id}/questions/${other.body.questionId}/withdraw`, undefined)).status).toBe(200);
    });

    it('GET /dead-letters lists terminated inbound messages with a total; a bad limit is 400', async () => {
      const listed = await get<{ deadLetters: unknown[]; total: number }>('/dead-letters?limit=5');
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual({ deadLetters: expect.any(Array), total: expect.any(Number) });
      expect(listed.body.deadLetters.length).toBeLessThanOrEqual(5);
      expect((await get('/dead-letters?limit=lots')).status).toBe(400);
      expect((await get('/dead-letters', { token: null })).status).toBe(401);
    });

    it('POST /tasks/:taskId/events reports progress and completion; a second completion is 409 and an unknown task 404', async () => {
      const supervisor = await spawnSupervisor('tasked');
      const spawned = await post<TaskResponse>(`/supervisors/${supervisor.id}/tasks`, { description: 'index the repository' });
      expect(spawned.status).toBe(201);
      expect(spawned.body.supervisor).toMatchObject({ state: 'waiting_for_tasks', spawnedTaskIds: [spawned.body.taskId] });
      const progress = await post<TaskResponse>(`/tasks/${spawned.body.taskId}/events`, { type: 'progress', progress: 40 });
      expect(progress.status).toBe(200);
      expect(progress.body.supervisor.state).toBe('waiting_for_tasks');
      const done = await post<TaskResponse>(`/tasks/${spawned.body.taskId}/events`, { type: 'completed', result: 'indexed 12 files' });
      expect(done.status).toBe(200);
      expect(done.body.supervisor.state).toBe('working');
      // The same report again is a retry (answered as a replay); a different outcome for a finished task is refused.
      const again = await post(`/tasks/${spawned.body.taskId}/events`, { type: 'completed', result: 'indexed 12 files' });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replay')).toBe('true');
      const other = await post(`/tasks/${spawned.body.taskId}/events`, { type: 'failed', error: 'late' });
      expect(other.status).toBe(409);
      expect(other.body.reason).toMatch(/already completed/);
      const unknown = await post(`/tasks/${randomUUID()}/events`, { type: 'completed' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toBe('TaskNotFoundError');
      expect((await post(`/tasks/${spawned.body.taskId}/events`, { type: 'finished' })).body.message).toMatch(/body\.type must be one of "progress", "completed", "failed"/);
      // The finished task left the snapshot; GET /supervisors/:id/tasks keeps it with its result.
      const tasks = await get<{ tasks: Array<{ id: string; status: string; result: string | null }> }>(`/supervisors/${supervisor.id}/tasks`);
      expect(tasks.status).toBe(200);
      expect(tasks.body.tasks).toEqual([expect.objectContaining({ id: spawned.body.taskId, status: 'completed', result: 'indexed 12 files', progress: 100 })]);
    });

    it('a full flow: spawn (STARTed automatically), ask, answer, spawn a task, complete it, COMPLETE; checkpoints newest first', async () => {
      const supervisor = await spawnSupervisor('full flow');
      expect(supervisor.state).toBe('idle');
      const asked = await post<QuestionAskedResponse>(`/supervisors/${supervisor.id}/questions`, { question: 'Go?', choices: ['go', 'stop'] });
      expect(asked.body.supervisor.state).toBe('waiting_for_user');
      const answered = await post<SupervisorView>(`/supervisors/${supervisor.id}/questions/${asked.body.questionId}/answer`, { answer: 'go' });
      expect(answered.body.state).toBe('working');
      const task = await post<TaskResponse>(`/supervisors/${supervisor.id}/tasks`, { description: 'do the work' });
      expect(task.body.supervisor.state).toBe('waiting_for_tasks');
      const finished = await post<TaskResponse>(`/tasks/${task.body.taskId}/events`, { type: 'completed', result: 'done' });
      expect(finished.body.supervisor.state).toBe('working');
      const completed = await post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'COMPLETE', summary: 'all done' });
      expect(completed.status).toBe(200);
      expect(completed.body.state).toBe('completed');
      const afterwards = await post(`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'more' });
      expect(afterwards.status).toBe(409);

      const checkpoints = await get<CheckpointListResponse>(`/supervisors/${supervisor.id}/checkpoints`);
      expect(checkpoints.status).toBe(200);
      const seqs = checkpoints.body.checkpoints.map((checkpoint) => checkpoint.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
      expect(checkpoints.body.checkpoints[0]).toMatchObject({ state: 'completed', seq: completed.body.checkpointSeq });
      expect(checkpoints.body.checkpoints.at(-1)).toMatchObject({ seq: 1, reason: 'created', state: 'initializing' });
      expect(checkpoints.body.checkpoints.map((checkpoint) => checkpoint.state)).toEqual(
        expect.arrayContaining(['completed', 'working', 'waiting_for_tasks', 'waiting_for_user', 'idle', 'initializing']),
      );
      expect(checkpoints.body.checkpoints[0]).not.toHaveProperty('snapshot');
      const limited = await get<CheckpointListResponse>(`/supervisors/${supervisor.id}/checkpoints?limit=2&snapshots=true`);
      expect(limited.body.checkpoints.map((checkpoint) => checkpoint.seq)).toEqual(seqs.slice(0, 2));
      expect(limited.body.checkpoints[0]?.snapshot).toBeTypeOf('object');
      expect((await get(`/supervisors/${UNKNOWN_ID}/checkpoints`)).status).toBe(404);
      expect((await get(`/supervisors/${supervisor.id}/checkpoints?limit=0`)).status).toBe(400);
    });

    it('a value that breaks its pattern is 400 naming the field and its own rule (task id, fromSeq, limits)', async () => {
      const supervisor = await spawnSupervisor('patterns');
      const cases: Array<[Promise<Answer<ErrorBody>>, string]> = [
        [post(`/supervisors/${supervisor.id}/tasks`, { description: 'x', taskId: 'has a space' }), 'body.taskId must be letters, digits, _ and - only, 1 to 128 characters'],
        [post(`/supervisors/${supervisor.id}/events`, { type: 'SPAWN_TASK', description: 'x', taskId: 't'.repeat(129) }), 'body.taskId must be letters, digits, _ and - only, 1 to 128 characters'],
        [get(`/supervisors/${supervisor.id}/conversation?fromSeq=-5`), 'querystring.fromSeq must be a whole number from 0 to 999999999'],
        [get(`/supervisors/${supervisor.id}/conversation?limit=1e3`), 'querystring.limit must be a whole number from 0 to 99999'],
        [get(`/supervisors/${supervisor.id}/questions?limit=-1`), 'querystring.limit must be a whole number from 0 to 99999'],
        [get(`/supervisors/${supervisor.id}/checkpoints?limit=0`), 'querystring.limit must be a whole number from 1 to 9999'],
        [get('/dead-letters?limit=lots'), 'querystring.limit must be a whole number from 0 to 9999'],
      ];
      for (const [answer, problem] of cases) {
        const refused = await answer;
        expect(refused.status, problem).toBe(400);
        expect(refused.body.problems).toEqual([expect.stringContaining(problem)]);
      }
      expect((await get<{ tasks: unknown[] }>(`/supervisors/${supervisor.id}/tasks`)).body).toEqual({ tasks: [] });
    });

    it('48 spawns at once under one id make one supervisor: the same name is a replay, another name is 400 taken, never 409 or 500', async () => {
      for (const names of ['same', 'different'] as const) {
        const id = randomUUID();
        const answers = await Promise.all(Array.from({ length: 48 }, (_, i) => post<SupervisorView>('/supervisors', { id, name: names === 'same' ? 'racer' : `racer ${i}` })));
        const created = answers.filter((answer) => answer.status === 201);
        expect(created, names).toHaveLength(1);
        const others = answers.filter((answer) => answer.status !== 201);
        if (names === 'same') {
          for (const replay of others) {
            expect(replay.status).toBe(200);
            expect(replay.headers.get('idempotent-replay')).toBe('true');
            expect(replay.body).toMatchObject({ id, name: 'racer' });
          }
        } else {
          for (const refused of others) {
            expect(refused.status, JSON.stringify(refused.body)).toBe(400);
            expect((refused.body as unknown as ErrorBody).message).toMatch(/id is already taken by another supervisor/);
          }
        }
        expect((await get<SupervisorView>(`/supervisors/${id}`)).body).toMatchObject({ id, name: created[0]?.body.name, state: 'idle' });
      }
    });

    it('an unknown route is 404 and a body over 64 KiB is 413, both as { error, message }', async () => {
      const missing = await get('/nowhere');
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ error: 'Not Found', message: expect.stringMatching(/No route GET \/nowhere/) });
      const huge = await post('/supervisors', { name: 'x'.repeat(70 * 1024) });
      expect(huge.status).toBe(413);
      expect(huge.body.error).toBe('Payload Too Large');
    });

    it('SIGTERM: the daemon finishes, exits 0 within 10 s, and a second daemon on the same database serves every acknowledged change', async () => {
      const supervisors = await Promise.all([1, 2, 3, 4].map((n) => spawnSupervisor(`survivor ${n}`)));
      // Requests in flight when the signal lands either commit before the reply or are refused: never 200 and lost.
      const inFlight = supervisors.map((supervisor) =>
        post<SupervisorView>(`/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'after-signal' }).catch(() => null),
      );
      const stopped = await daemon.stop('SIGTERM');
      expect(stopped.code, daemon.logs()).toBe(0);
      expect(stopped.ms).toBeLessThan(10_000);
      expect(daemon.logs()).toMatch(/"msg":"daemon stopped"/);
      const acknowledged = (await Promise.all(inFlight)).map((answer) => answer?.status === 200);

      daemon = await startDaemonProcess({ env: { ...database.env, SUPERVISOR_RUNTIME_TOKEN: TOKEN } });
      for (const [index, supervisor] of supervisors.entries()) {
        const stored = await get<SupervisorView>(`/supervisors/${supervisor.id}`);
        expect(stored.status).toBe(200);
        expect(stored.body.name).toBe(supervisor.name);
        if (acknowledged[index]) expect(stored.body.phase).toBe('after-signal');
      }
    });
  });
}
