// POST /supervisors/:id/fork and GET /supervisors/:id/forks, and the CLI's fork command over them.

import { describe, expect, it } from 'vitest';
import type { ForkResponse } from '../../src/api/routes/forks.js';
import { createApiServer } from '../../src/api/server.js';
import type { CheckpointListResponse, SupervisorView } from '../../src/api/views.js';
import type { ForkLineage } from '../../src/persistence/supervisor-repository.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { runCliHere } from '../helpers/processes.js';

for (const target of await databaseTargets()) {
  describe(`forks over HTTP on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('forks a checkpoint (201), replays a retry with the same id or key (200), refuses what it cannot fork with the reason, lists the lineage; the CLI forks too', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const app = await createApiServer(runtime);
      try {
        const source = await runtime.spawn({ name: 'planner' });
        const task = await runtime.spawnTask(source.id, { description: 'build' });
        await runtime.askQuestion(source.id, { question: 'Ship it?', questionId: 'ship' });
        const checkpoints = (await app.inject({ method: 'GET', url: `/supervisors/${source.id}/checkpoints?limit=1` })).json<CheckpointListResponse>().checkpoints;
        const seq = checkpoints[0]!.seq;
        await runtime.answerQuestion(source.id, 'ship', 'yes');

        const post = (body: unknown, headers: Record<string, string> = {}) =>
          app.inject({ method: 'POST', url: `/supervisors/${source.id.toUpperCase()}/fork`, headers, ...(body === undefined ? {} : { payload: body as object }) });
        const id = '2f1c9e7a-5b3d-4c8e-a1f0-6d2b7e9c4a35';
        const created = await post({ checkpointSeq: seq, id, name: 'second try' });
        expect(created.statusCode).toBe(201);
        const fork = created.json<ForkResponse>();
        expect(fork.forkedFrom).toEqual({ supervisorId: source.id, checkpointSeq: seq });
        expect(fork.supervisor).toMatchObject({ id, name: 'second try', state: 'waiting_for_user', live: true });
        expect(fork.supervisor.pendingQuestions.map((question) => question.id)).toEqual(['ship']);
        expect(fork.tasks).toEqual([{ from: task.taskId, to: expect.any(String), description: 'build' }]);
        expect(fork.supervisor.spawnedTaskIds).toEqual([fork.tasks[0]!.to]);

        // The same id again is the retry: the same fork, once.
        const again = await post({ checkpointSeq: seq, id, name: 'second try' });
        expect(again.statusCode).toBe(200);
        expect(again.headers['idempotent-replay']).toBe('true');
        expect(again.json<ForkResponse>()).toMatchObject({ supervisor: { id }, forkedFrom: fork.forkedFrom, tasks: fork.tasks });
        // The id for a fork of another checkpoint is taken.
        expect((await post({ checkpointSeq: seq + 1, id })).statusCode).toBe(400);

        // An Idempotency-Key stands for the id: the retry gets the same fork.
        const keyed = await post(undefined, { 'idempotency-key': 'fork-once' });
        expect(keyed.statusCode).toBe(201);
        const keyedAgain = await post(undefined, { 'idempotency-key': 'fork-once' });
        expect(keyedAgain.statusCode).toBe(200);
        expect(keyedAgain.json<ForkResponse>().supervisor.id).toBe(keyed.json<ForkResponse>().supervisor.id);
        // The key again with another checkpoint is refused naming the key (the id it stands for was never the caller's).
        const reused = await post({ checkpointSeq: seq }, { 'idempotency-key': 'fork-once' });
        expect(reused.statusCode).toBe(400);
        expect(reused.json()).toMatchObject({ error: 'IdempotencyKeyReusedError', idempotencyKey: 'fork-once', supervisorId: keyed.json<ForkResponse>().supervisor.id });
        expect(reused.json<{ message: string }>().message).toMatch(/^Refusing the fork: the Idempotency-Key header "fork-once" was already used for a different fork \(it made supervisor /);
        // With no body: the newest checkpoint, in which the question was answered (nothing pending).
        expect(keyed.json<ForkResponse>().supervisor.pendingQuestions).toEqual([]);

        // Refusals: with the reason, writing nothing.
        const missing = await post({ checkpointSeq: 999 });
        expect(missing.statusCode).toBe(404);
        expect(missing.json()).toMatchObject({ error: 'CheckpointNotFoundError', checkpointSeq: 999 });
        expect(missing.json<{ message: string }>().message).toMatch(/GET \/supervisors\/.*\/checkpoints/);
        expect((await app.inject({ method: 'POST', url: '/supervisors/00000000-0000-4000-8000-000000000000/fork' })).statusCode).toBe(404);
        for (const body of [{ checkpointSeq: 0 }, { checkpointSeq: 'newest' }, { name: '' }, { start: 'yes' }, { parent: source.id }, { id: 'not-a-uuid' }]) {
          expect((await post(body)).statusCode, JSON.stringify(body)).toBe(400);
        }
        await runtime.reportTaskEvent(task.taskId, { type: 'completed', result: 'built' });
        await runtime.send(source.id, { type: 'COMPLETE', summary: 'done' });
        const finished = await post({});
        expect(finished.statusCode).toBe(409);
        expect(finished.json()).toMatchObject({ error: 'ForkRefusedError', reason: expect.stringContaining('completed') });

        // Lineage both ways.
        const lineage = (await app.inject({ method: 'GET', url: `/supervisors/${source.id}/forks` })).json<ForkLineage>();
        expect(lineage.forkedFrom).toBeNull();
        expect(new Set(lineage.forks.map((entry) => entry.supervisorId))).toEqual(new Set([id, keyed.json<ForkResponse>().supervisor.id]));
        const child = (await app.inject({ method: 'GET', url: `/supervisors/${id}/forks` })).json<ForkLineage>();
        expect(child.forkedFrom).toMatchObject({ supervisorId: id, sourceId: source.id, checkpointSeq: seq, tasks: fork.tasks });
        expect((await app.inject({ method: 'GET', url: `/supervisors/${id}/forks?depth=2` })).statusCode).toBe(400);

        // The CLI, against the same API.
        const url = await app.listen({ host: '127.0.0.1', port: 0 });
        const cli = await runCliHere(['fork', id, '--checkpoint', String(fork.supervisor.checkpointSeq), '--name', 'third try', '--url', url]);
        expect(cli.stderr).toBe('');
        expect(cli.code).toBe(0);
        expect(cli.stdout).toMatch(new RegExp(`^Forked supervisor [0-9a-f-]{36} \\(third try\\) from ${id} at checkpoint ${fork.supervisor.checkpointSeq}: state waiting_for_user`));
        expect(cli.stdout).toContain('question ship asked again: Ship it?');
        expect(cli.stdout).toMatch(new RegExp(`task ${fork.tasks[0]!.to} spawned again as [0-9a-f-]{36}: build`));
        const json = await runCliHere(['fork', id, '--json', '--no-start', '--url', url]);
        expect(json.code).toBe(0);
        expect(JSON.parse(json.stdout)).toMatchObject({ forkedFrom: { supervisorId: id }, supervisor: { state: 'waiting_for_user' } satisfies Partial<SupervisorView> });
        const bad = await runCliHere(['fork', id, '--checkpoint', 'latest', '--url', url]);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(/--checkpoint must be a checkpoint's seq/);
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
