// Forking from a checkpoint: a new supervisor with the checkpoint's state and conversation, whose open work is its own.

import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { InvalidSupervisorDataError, SupervisorNotFoundError } from '../../src/domain/errors.js';
import type { Database } from '../../src/persistence/database.js';
import { getConversation, listCheckpoints, listSupervisorTasks } from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { CheckpointNotFoundError, ForkRefusedError } from '../../src/runtime/errors.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { SaveReplyGate } from '../helpers/connection-faults.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

const runtimeOn = (database: Database, options: Partial<Parameters<typeof createRuntime>[0]> = {}): SupervisorRuntime =>
  createRuntime({ database, heartbeatIntervalMs: 0, ...options });

/** A supervisor through a few steps: two tasks spawned, one finished, a question asked and answered, one pending. */
async function history(runtime: SupervisorRuntime) {
  const source = await runtime.spawn({ name: 'planner' });
  await runtime.send(source.id, { type: 'SET_PHASE', phase: 'execution' });
  const lint = await runtime.spawnTask(source.id, { description: 'lint' });
  const build = await runtime.spawnTask(source.id, { description: 'build' });
  await runtime.reportTaskEvent(lint.taskId, { type: 'completed', result: 'clean' });
  const region = await runtime.askQuestion(source.id, { question: 'Which region?', choices: ['eu', 'us'] });
  // The checkpoint to fork from: build running, the region question pending.
  const [fork] = await runtime.checkpoints(source.id, { limit: 1 });
  await runtime.answerQuestion(source.id, region.questionId, 'eu');
  await runtime.reportTaskEvent(build.taskId, { type: 'completed', result: 'built' });
  return { id: source.id, checkpoint: fork!, lint: lint.taskId, build: build.taskId, region: region.questionId };
}

const outboxOf = (db: Database['db'], id: string) =>
  sql<{ subject: string; payload: Record<string, unknown> }>`SELECT subject, payload FROM supervisor_outbox WHERE supervisor_id = ${id} ORDER BY id`.execute(db).then((result) => result.rows);

for (const target of await databaseTargets()) {
  describe(`forking from a checkpoint on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('the fork has the checkpoint\'s state and conversation, asks its pending question again and spawns its running task again, all its own', async () => {
      const runtime = runtimeOn(database());
      try {
        const source = await history(runtime);
        const sourceConversation = await getConversation(db(), source.id);
        const atCheckpoint = (source.checkpoint.snapshot as { context: { conversationLength: number } }).context.conversationLength;
        expect(source.checkpoint.state).toBe('waiting_for_user');

        const result = await runtime.fork(source.id, { checkpointSeq: source.checkpoint.seq });
        const fork = result.supervisor;
        expect(fork.id).not.toBe(source.id);
        expect(result.forkedFrom).toEqual({ supervisorId: source.id, checkpointSeq: source.checkpoint.seq });
        expect(result.questionIds).toEqual([source.region]);
        expect(result.tasks).toHaveLength(1);
        const [task] = result.tasks;
        expect(task).toMatchObject({ from: source.build, description: 'build' });
        expect(task!.to).not.toBe(source.build);

        // State as at the checkpoint, under the fork's name and id.
        const described = await runtime.describe(fork.id);
        expect(described).toMatchObject({
          name: 'planner (fork)',
          state: 'waiting_for_user',
          phase: 'execution',
          spawnedTaskIds: [task!.to],
          restorationCount: 0,
          owner: runtime.daemonId,
          conversationLength: atCheckpoint + 1,
        });
        expect(described.pendingQuestions.map((question) => [question.id, question.question, question.choices, question.deliveryCount])).toEqual([[source.region, 'Which region?', ['eu', 'us'], 1]]);
        expect(fork.snapshot.context).toMatchObject({ completedTaskCount: 1, answeredQuestionCount: 0 });

        // The conversation up to the checkpoint, copied entry for entry, then the notice.
        const conversation = await getConversation(db(), fork.id);
        expect(conversation.slice(0, atCheckpoint)).toEqual(sourceConversation.slice(0, atCheckpoint));
        expect(conversation).toHaveLength(atCheckpoint + 1);
        expect(conversation.at(-1)).toMatchObject({ seq: atCheckpoint, role: 'system' });
        expect(conversation.at(-1)?.content).toContain(`fork of supervisor "planner" (${source.id}), made from its checkpoint ${source.checkpoint.seq}`);
        expect(conversation.at(-1)?.content).toContain(`${source.build} → ${task!.to} (build)`);
        expect(conversation.at(-1)?.content).toContain(`${source.region} ("Which region?")`);

        // Its open work is its own: a question row and a delivery, a task row and a spawn message, under the fork.
        const questions = await runtime.questions(fork.id);
        expect(questions.map((question) => [question.id, question.answer])).toEqual([[source.region, null]]);
        const tasks = await listSupervisorTasks(db(), fork.id);
        expect(tasks.map((row) => [row.id, row.status, row.description])).toEqual([[task!.to, 'running', 'build']]);
        const outbox = await outboxOf(db(), fork.id);
        expect(outbox.filter((row) => row.subject.endsWith('tasks.spawn')).map((row) => row.payload.taskId)).toEqual([task!.to]);
        expect(outbox.filter((row) => row.subject.includes('.questions')).map((row) => [row.payload.questionId, row.payload.redelivery])).toEqual([[source.region, false]]);

        // Lineage both ways.
        expect(await runtime.lineage(fork.id)).toMatchObject({ forkedFrom: { supervisorId: fork.id, sourceId: source.id, checkpointSeq: source.checkpoint.seq, tasks: result.tasks }, forks: [] });
        expect((await runtime.lineage(source.id)).forks.map((entry) => entry.supervisorId)).toEqual([fork.id]);

        // The fork carries on by itself: its answer and its task's outcome are its own; the source is untouched.
        await runtime.answerQuestion(fork.id, source.region, 'us');
        await runtime.reportTaskEvent(task!.to, { type: 'completed', result: 'built again' });
        expect(runtime.get(fork.id)?.state).toBe('working');
        expect((await runtime.questions(source.id)).find((question) => question.id === source.region)?.answer).toBe('eu');
        expect((await runtime.questions(fork.id))[0]?.answer).toBe('us');
        expect((await runtime.describe(source.id)).conversationLength).toBe(sourceConversation.length);
        expect((await listSupervisorTasks(db(), source.id)).map((row) => [row.id, row.result])).toEqual(
          expect.arrayContaining([
            [source.lint, 'clean'],
            [source.build, 'built'],
          ]),
        );
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a fork is durable: another runtime restores it through the guards, waiting on its own task and question', async () => {
      const first = runtimeOn(database());
      const source = await history(first);
      const { supervisor: fork, tasks } = await first.fork(source.id, { checkpointSeq: source.checkpoint.seq, name: 'retry' });
      await first.shutdown({ closeDatabase: false });

      const second = runtimeOn(database());
      try {
        const summary = await second.restoreAll();
        const info = summary.results.find((result) => result.supervisorId === fork.id);
        expect(info).toMatchObject({ recoveryAction: 'restore', restoredState: 'waiting_for_user', tasksResumed: [tasks[0]!.to] });
        expect(info?.validation.valid).toBe(true);
        expect(second.get(fork.id)?.snapshot.context.name).toBe('retry');
      } finally {
        await second.shutdown({ closeDatabase: false });
      }
    });

    it('with no checkpoint named, the newest; a fork of an interrupted checkpoint is resumed; its driver hears the notice', async () => {
      const heard: Array<{ id: string; sourceId: string; checkpointSeq: number; notice: string }> = [];
      const driver: AgentDriver = { name: 'listening', onForked: (supervisor, fork) => void heard.push({ id: supervisor.id, sourceId: fork.sourceId, checkpointSeq: fork.checkpointSeq, notice: fork.contextMessage }) };
      const runtime = runtimeOn(database(), { drivers: [driver] });
      try {
        const source = await runtime.spawn({ name: 'paused', driver: 'listening' });
        await runtime.send(source.id, { type: 'SET_PHASE', phase: 'review' });
        await runtime.send(source.id, { type: 'INTERRUPT', reason: 'operator pause' });
        const [newest] = await listCheckpoints(db(), source.id, { limit: 1 });
        expect(newest?.state).toBe('interrupted');

        const { supervisor: fork, forkedFrom } = await runtime.fork(source.id);
        expect(forkedFrom.checkpointSeq).toBe(newest!.seq);
        // RESUME took it back to where it was interrupted from.
        expect(fork.state).toBe('idle');
        expect(fork.snapshot.context.phase).toBe('review');
        expect(fork.driverName).toBe('listening');
        await expect.poll(() => heard.length).toBe(1);
        expect(heard[0]).toMatchObject({ id: fork.id, sourceId: source.id, checkpointSeq: newest!.seq });
        expect(heard[0]?.notice).toContain('[fork] You are a fork of supervisor "paused"');
        expect(runtime.get(source.id)?.state).toBe('interrupted');
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('refuses what it cannot fork, writing nothing: an unknown supervisor or checkpoint, a finished checkpoint, an invalid one, a bad id', async () => {
      const runtime = runtimeOn(database());
      try {
        const done = await runtime.spawn({ name: 'done' });
        await runtime.send(done.id, { type: 'COMPLETE', summary: 'shipped' });
        const [completed] = await listCheckpoints(db(), done.id, { limit: 1 });
        const count = async () => Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM supervisor_states`.execute(db())).rows[0]?.n);
        const before = await count();

        await expect(runtime.fork('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(SupervisorNotFoundError);
        await expect(runtime.fork(done.id, { checkpointSeq: 999 })).rejects.toBeInstanceOf(CheckpointNotFoundError);
        await expect(runtime.fork(done.id)).rejects.toThrow(new ForkRefusedError(done.id, completed!.seq, 'the supervisor was completed at that checkpoint, so a fork of it could do nothing'));
        await expect(runtime.fork(done.id, { id: 'not-a-uuid' })).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        await expect(runtime.fork(done.id, { checkpointSeq: 0 })).rejects.toBeInstanceOf(InvalidSupervisorDataError);

        // An earlier checkpoint of the finished supervisor forks fine; a damaged one is refused with its problems.
        const [started] = await listCheckpoints(db(), done.id, { beforeSeq: completed!.seq, limit: 1 });
        await sql`UPDATE supervisor_checkpoints SET snapshot = '{"value":"idle","context":{"progress":"lots"}}'::jsonb WHERE supervisor_id = ${done.id} AND seq = ${started!.seq}`.execute(db());
        const refused = await runtime.fork(done.id, { checkpointSeq: started!.seq }).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(ForkRefusedError);
        expect((refused as ForkRefusedError).problems.length).toBeGreaterThan(0);
        expect(await count()).toBe(before);
        const [first] = await listCheckpoints(db(), done.id, { beforeSeq: started!.seq, limit: 1 });
        const fork = await runtime.fork(done.id, { checkpointSeq: first!.seq });
        expect(fork.supervisor.state).not.toBe('completed');
        expect(await count()).toBe(before + 1);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('forks made at once share a group commit, each with its own copy of the conversation', async () => {
      // Replies held while the forks are made: the first creations stay in flight, and the rest queue behind them. A
      // held reply keeps its connection, so this needs a pool (PGlite has one connection: its forks are only checked
      // for their copies, the same statement's group form having been held to on Postgres).
      const gate = database().kind === 'postgres' ? new SaveReplyGate() : null;
      const runtime = runtimeOn(gate ? { ...database(), db: database().db.withPlugin(gate) } : database());
      try {
        const source = await history(runtime);
        const atCheckpoint = (source.checkpoint.snapshot as { context: { conversationLength: number } }).context.conversationLength;
        gate?.close();
        const making = Promise.all(Array.from({ length: 6 }, (_, i) => runtime.fork(source.id, { checkpointSeq: source.checkpoint.seq, name: `try ${i}` })));
        if (gate) {
          // Two statements in flight (the batcher's limit), four creations waiting for the next one.
          await vi.waitFor(() => expect([gate.held, runtime.stats().saves.savesWaiting]).toEqual([2, 4]), { timeout: 20_000, interval: 5 });
          gate.open();
        }
        const forks = await making;
        // The four waiting creations went together: one statement carried several forks (the group form).
        if (gate) expect(runtime.stats().saves.largestBatch).toBeGreaterThanOrEqual(4);
        for (const { supervisor } of forks) {
          const conversation = await getConversation(db(), supervisor.id);
          expect(conversation).toHaveLength(atCheckpoint + 1);
          expect((await runtime.lineage(supervisor.id)).forkedFrom?.sourceId).toBe(source.id);
        }
        expect(new Set(forks.map((fork) => fork.tasks[0]!.to)).size).toBe(6);
      } finally {
        gate?.open();
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a caller-chosen fork id is taken once: the same id again is refused as taken', async () => {
      const runtime = runtimeOn(database());
      try {
        const source = await runtime.spawn({ name: 'src' });
        const id = '8d6b1f5e-3c0a-4f6e-9a51-7d2b9c0e4a11';
        await runtime.fork(source.id, { id });
        await expect(runtime.fork(source.id, { id })).rejects.toThrow(/already taken/);
        expect((await runtime.lineage(source.id)).forks.map((entry) => entry.supervisorId)).toEqual([id]);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
