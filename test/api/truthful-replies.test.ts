// Replies that tell the truth: a write that committed is never answered "nothing was written" because the read-back
// failed, and a retried write is recognised by the caller's ids (answered as a replay, applied once).

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPLAY_HEADER } from '../../src/api/routes/supervisors.js';
import { createApiServer } from '../../src/api/server.js';
import type { QuestionAskedResponse, SupervisorView, TaskResponse } from '../../src/api/views.js';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`truthful replies on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    let runtime: SupervisorRuntime;
    let app: FastifyInstance;

    // Each test has its own schema (useIsolatedDatabase), so its own runtime and server.
    beforeEach(async () => {
      runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      app = await createApiServer(runtime);
    });
    afterEach(async () => {
      await app?.close();
      await runtime?.shutdown({ closeDatabase: false });
    });

    const post = async <T>(url: string, payload?: unknown) => {
      const response = await app.inject({ method: 'POST', url, ...(payload !== undefined ? { payload: payload as object } : {}) });
      return { status: response.statusCode, body: response.json() as T & { message?: string; error?: string }, replay: response.headers['idempotent-replay'] };
    };

    it('a write that committed while the read-back fails answers with the committed state, not a 503', async () => {
      const id = randomUUID();
      const spawned = await post<SupervisorView>('/supervisors', { id, name: 'read-back fails', driver: 'manual' });
      expect(spawned.status).toBe(201);
      // The database goes away right after the commit: every read of the stored state fails from here on.
      const describe = runtime.describe;
      runtime.describe = async () => {
        throw new DatabaseUnavailableError('getSupervisorState', id, new Error('connection terminated'));
      };
      try {
        const phase = await post<SupervisorView>(`/supervisors/${id}/events`, { type: 'SET_PHASE', phase: 'committed' });
        expect(phase.status).toBe(200);
        expect(phase.body).toMatchObject({ id, phase: 'committed', state: 'idle', readBack: false, live: true, owner: runtime.daemonId });
        const asked = await post<QuestionAskedResponse>(`/supervisors/${id}/questions`, { question: 'Still here?' });
        expect(asked.status).toBe(201);
        expect(asked.body.supervisor).toMatchObject({ state: 'waiting_for_user', readBack: false });
        expect(asked.body.supervisor.pendingQuestions.map((question) => question.id)).toEqual([asked.body.questionId]);
        // A retried spawn is told by the supervisor this daemon runs under the id: a replay, not "taken by another".
        const respawned = await post<SupervisorView>('/supervisors', { id, name: 'read-back fails', driver: 'manual' });
        expect([respawned.status, respawned.replay]).toEqual([200, 'true']);
        expect(respawned.body).toMatchObject({ id, name: 'read-back fails', state: 'waiting_for_user', readBack: false });
        const taken = await post('/supervisors', { id, name: 'someone else' });
        expect([taken.status, taken.body.message]).toEqual([400, expect.stringMatching(/is already taken by another supervisor/)]);
        // A read that is not part of a write still fails as it should.
        expect((await app.inject({ method: 'GET', url: `/supervisors/${id}` })).statusCode).toBe(503);
      } finally {
        runtime.describe = describe;
      }
      // What the replies said is what was stored.
      const stored = await runtime.describe(id);
      expect(stored).toMatchObject({ phase: 'committed', state: 'waiting_for_user' });
      const view = (await post<SupervisorView>(`/supervisors/${id}/events`, { type: 'HEARTBEAT' })).body;
      expect(view.readBack).toBeUndefined();
      expect(view.checkpointSeq).toBe(stored.checkpointSeq);
    });

    it('a retried spawn, ask, answer, task spawn and task report with the caller\'s ids is applied once and answered as a replay', async () => {
      const id = randomUUID();
      const first = await post<SupervisorView>('/supervisors', { id, name: 'retried', driver: 'manual' });
      const again = await post<SupervisorView>('/supervisors', { id, name: 'retried', driver: 'manual' });
      expect([first.status, again.status]).toEqual([201, 200]);
      expect(again.replay).toBe('true');
      expect(again.body).toMatchObject({ id, name: 'retried', step: first.body.step });
      // The same id for something else is still refused.
      expect((await post('/supervisors', { id, name: 'someone else' })).status).toBe(400);

      // An event has no id, but a retried SET_PHASE finds its phase set: a replay, no second step.
      const phased = await post<SupervisorView>(`/supervisors/${id}/events`, { type: 'SET_PHASE', phase: 'review' });
      const phasedAgain = await post<SupervisorView>(`/supervisors/${id}/events`, { type: 'SET_PHASE', phase: 'review' });
      expect([phased.status, phased.replay, phasedAgain.status, phasedAgain.replay], phasedAgain.body.message).toEqual([200, undefined, 200, 'true']);
      expect(phasedAgain.body).toMatchObject({ phase: 'review', step: phased.body.step, checkpointSeq: phased.body.checkpointSeq });

      const question = { questionId: 'q-retried', question: 'Deploy now?', choices: ['yes', 'no'] };
      const asked = await post<QuestionAskedResponse>(`/supervisors/${id}/questions`, question);
      const askedAgain = await post<QuestionAskedResponse>(`/supervisors/${id}/questions`, question);
      expect([asked.status, askedAgain.status]).toEqual([201, 200]);
      expect(askedAgain.replay).toBe('true');
      expect(askedAgain.body.supervisor.pendingQuestions).toHaveLength(1);
      expect((await post(`/supervisors/${id}/questions`, { ...question, question: 'Deploy later?' })).status).toBe(409);

      const answered = await post<SupervisorView>(`/supervisors/${id}/questions/q-retried/answer`, { answer: 'yes' });
      const answeredAgain = await post<SupervisorView>(`/supervisors/${id}/questions/q-retried/answer`, { answer: 'yes' });
      expect([answered.status, answeredAgain.status]).toEqual([200, 200]);
      expect(answered.replay).toBeUndefined();
      expect(answeredAgain.replay).toBe('true');
      expect(answeredAgain.body.step).toBe(answered.body.step);
      const otherAnswer = await post(`/supervisors/${id}/questions/q-retried/answer`, { answer: 'no' });
      expect(otherAnswer.status).toBe(409);
      expect(otherAnswer.body).toMatchObject({ error: 'QuestionAlreadyAnsweredError', firstAnswer: 'yes' });
      // An answered question's id is not asked again, through the events route either: the first answer keeps winning.
      const reask = await post(`/supervisors/${id}/events`, { type: 'ASK_QUESTION', questionId: 'q-retried', question: 'Delete prod?' });
      expect(reask.status).toBe(409);
      expect(reask.body.message).toMatch(/question q-retried was already answered: "yes"; ask with a new id/);
      expect((await runtime.describe(id)).pendingQuestions).toEqual([]);

      const spawned = await post<TaskResponse>(`/supervisors/${id}/tasks`, { taskId: 'task-retried', description: 'build it' });
      const spawnedAgain = await post<TaskResponse>(`/supervisors/${id}/tasks`, { taskId: 'task-retried', description: 'build it' });
      expect([spawned.status, spawnedAgain.status]).toEqual([201, 200]);
      expect(spawnedAgain.replay).toBe('true');
      expect(spawnedAgain.body.supervisor.spawnedTaskIds).toEqual(['task-retried']);
      expect((await post(`/supervisors/${id}/tasks`, { taskId: 'task-retried', description: 'something else' })).status).toBe(409);

      const done = await post<TaskResponse>('/tasks/task-retried/events', { type: 'completed', result: 'built' });
      const doneAgain = await post<TaskResponse>('/tasks/task-retried/events', { type: 'completed', result: 'built' });
      expect([done.status, doneAgain.status]).toEqual([200, 200]);
      expect(doneAgain.replay).toBe('true');
      expect(doneAgain.body.supervisor.step).toBe(done.body.supervisor.step);
      const different = await post('/tasks/task-retried/events', { type: 'completed', result: 'built twice' });
      expect(different.status).toBe(409);
      // A finished task's id is not spawned again.
      const respawn = await post(`/supervisors/${id}/events`, { type: 'SPAWN_TASK', taskId: 'task-retried', description: 'again' });
      expect(respawn.status).toBe(409);
      expect(respawn.body.message).toMatch(/already spawned \(it is completed\)/);

      const tasks = await runtime.tasks(id);
      expect(tasks.map((task) => [task.id, task.status, task.result])).toEqual([['task-retried', 'completed', 'built']]);
      expect((await runtime.questions(id)).map((record) => [record.id, record.answer])).toEqual([['q-retried', 'yes']]);
    });

    it('retries of one ask or task spawn sent at once (caller id or Idempotency-Key) are applied once: one 201, the rest 200 replays', async () => {
      const id = (await post<SupervisorView>('/supervisors', { name: 'impatient', driver: 'manual' })).body.id;
      const race = async <T>(url: string, payload: unknown, headers: Record<string, string> = {}) => {
        const replies = await Promise.all(Array.from({ length: 6 }, () => app.inject({ method: 'POST', url, headers, payload: payload as object })));
        // Only the first of them is applied; the others passed the check for an earlier one before it committed.
        expect(replies.map((reply) => reply.statusCode).sort(), replies.map((reply) => reply.body).join('\n')).toEqual([200, 200, 200, 200, 200, 201]);
        expect(replies.filter((reply) => reply.headers[REPLAY_HEADER] === 'true')).toHaveLength(5);
        return replies.map((reply) => reply.json() as T);
      };
      await race<QuestionAskedResponse>(`/supervisors/${id}/questions`, { questionId: 'q-raced', question: 'Ship?' });
      const keyed = await race<QuestionAskedResponse>(`/supervisors/${id}/questions`, { question: 'Ship today?' }, { 'idempotency-key': 'ask-raced' });
      expect(new Set(keyed.map((reply) => reply.questionId)).size).toBe(1);
      await race<TaskResponse>(`/supervisors/${id}/tasks`, { taskId: 'task-raced', description: 'build it' });
      const keyedTasks = await race<TaskResponse>(`/supervisors/${id}/tasks`, { description: 'test it' }, { 'idempotency-key': 'task-raced' });
      expect(new Set(keyedTasks.map((reply) => reply.taskId)).size).toBe(1);
      expect((await runtime.describe(id)).pendingQuestions.map((question) => question.id).sort()).toEqual(['q-raced', keyed[0]?.questionId].sort());
      expect((await runtime.tasks(id)).map((task) => task.id).sort()).toEqual(['task-raced', keyedTasks[0]?.taskId].sort());
    });

    it('without ids of its own, a client retries a spawn, an ask and a task spawn with the same Idempotency-Key: applied once, answered as a replay', async () => {
      const keyed = async <T>(url: string, key: string, payload: unknown) => {
        const response = await app.inject({ method: 'POST', url, headers: { 'idempotency-key': key }, payload: payload as object });
        return { status: response.statusCode, body: response.json() as T & { message?: string }, replay: response.headers['idempotent-replay'] };
      };
      const key = randomUUID();
      const first = await keyed<SupervisorView>('/supervisors', key, { name: 'keyed', driver: 'manual' });
      const again = await keyed<SupervisorView>('/supervisors', key, { name: 'keyed', driver: 'manual' });
      expect([first.status, again.status]).toEqual([201, 200]);
      expect(again.replay).toBe('true');
      expect(again.body).toMatchObject({ id: first.body.id, step: first.body.step });
      // Another key is another supervisor; the same key for another name is refused, creating nothing.
      const other = await keyed<SupervisorView>('/supervisors', `${key}-2`, { name: 'keyed', driver: 'manual' });
      expect(other.status).toBe(201);
      expect(other.body.id).not.toBe(first.body.id);
      const reused = await keyed<{ error: string; idempotencyKey: string }>('/supervisors', key, { name: 'someone else' });
      expect(reused.status).toBe(400);
      expect(reused.body).toMatchObject({ error: 'IdempotencyKeyReusedError', idempotencyKey: key, supervisorId: first.body.id });
      expect(reused.body.message).toBe(
        `Refusing the spawn: the Idempotency-Key header "${key}" was already used for a different spawn (it made supervisor ${first.body.id}, "keyed"). ` +
          'Nothing was written; use a new key for a new spawn (a key replays only the spawn it first made).',
      );
      const id = first.body.id;

      const asked = await keyed<QuestionAskedResponse>(`/supervisors/${id}/questions`, 'ask-1', { question: 'Ship it?' });
      const askedAgain = await keyed<QuestionAskedResponse>(`/supervisors/${id}/questions`, 'ask-1', { question: 'Ship it?' });
      expect([asked.status, askedAgain.status]).toEqual([201, 200]);
      expect(askedAgain.replay).toBe('true');
      expect(askedAgain.body.questionId).toBe(asked.body.questionId);
      expect(askedAgain.body.supervisor.pendingQuestions).toHaveLength(1);
      // An empty context is stored as none: the retry is still the same ask.
      const blank = { question: 'Any notes?', context: '' };
      const blankAsked = await keyed<QuestionAskedResponse>(`/supervisors/${id}/questions`, 'ask-2', blank);
      const blankAgain = await keyed<QuestionAskedResponse>(`/supervisors/${id}/questions`, 'ask-2', blank);
      expect([blankAsked.status, blankAgain.status, blankAgain.replay], blankAgain.body.message).toEqual([201, 200, 'true']);
      expect(blankAgain.body.questionId).toBe(blankAsked.body.questionId);
      const blankWithoutContext = await keyed<QuestionAskedResponse>(`/supervisors/${id}/questions`, 'ask-2', { question: 'Any notes?' });
      expect(blankWithoutContext.status).toBe(200);
      // The same key for another question is refused naming the key and the question it asked, asking nothing.
      const reusedAsk = await keyed<{ error: string; idempotencyKey: string }>(`/supervisors/${id}/questions`, 'ask-1', { question: 'Ship it tomorrow?' });
      expect(reusedAsk.status).toBe(400);
      expect(reusedAsk.body).toMatchObject({ error: 'IdempotencyKeyReusedError', idempotencyKey: 'ask-1', supervisorId: id });
      expect(reusedAsk.body.message).toBe(
        `Refusing the question: the Idempotency-Key header "ask-1" was already used for a different question (it made question ${asked.body.questionId}, "Ship it?"). ` +
          'Nothing was written; use a new key for a new question (a key replays only the question it first made).',
      );
      expect((await runtime.questions(id)).map((question) => question.question).sort()).toEqual(['Any notes?', 'Ship it?']);

      const spawned = await keyed<TaskResponse>(`/supervisors/${id}/tasks`, 'task-1', { description: 'build it' });
      const spawnedAgain = await keyed<TaskResponse>(`/supervisors/${id}/tasks`, 'task-1', { description: 'build it' });
      expect([spawned.status, spawnedAgain.status]).toEqual([201, 200]);
      expect(spawnedAgain.replay).toBe('true');
      expect(spawnedAgain.body.supervisor.spawnedTaskIds).toEqual([spawned.body.taskId]);
      // The same key on another supervisor is that supervisor's own task.
      const elsewhere = await keyed<TaskResponse>(`/supervisors/${other.body.id}/tasks`, 'task-1', { description: 'build it' });
      expect(elsewhere.status).toBe(201);
      expect(elsewhere.body.taskId).not.toBe(spawned.body.taskId);

      // A bad key is 400 naming the header, and nothing is created.
      const before = (await runtime.listSupervisors()).supervisors.length;
      // Two headers reach the route joined as "a, b".
      for (const bad of ['', 'x'.repeat(256), 'has space', 'a, b']) {
        const refused = await keyed('/supervisors', bad, { name: 'bad key' });
        expect(refused.status, JSON.stringify(bad)).toBe(400);
        expect(refused.body.message).toMatch(/Idempotency-Key header must be one value of 1 to 255 visible ASCII characters/);
      }
      expect((await runtime.listSupervisors()).supervisors).toHaveLength(before);
      expect((await runtime.questions(id)).map((record) => record.id).sort()).toEqual([asked.body.questionId, blankAsked.body.questionId].sort());
      expect((await runtime.tasks(id)).map((task) => task.id)).toEqual([spawned.body.taskId]);
    });
  });
}
