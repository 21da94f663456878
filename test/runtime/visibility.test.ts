// Save before visible: a step is committed, with the messages it implies, before the live actor or the registry shows
// it; and what watches the runtime from outside (the @xstate/store registry, the Stately inspector) follows the commits.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { getSupervisorState, getTask } from '../../src/persistence/supervisor-repository.js';
import type { DurableSupervisor } from '../../src/runtime/durable-supervisor.js';
import type { RegistryEntry } from '../../src/runtime/registry.js';
import { questionsSubject, taskSpawnSubject } from '../../src/transport/subjects.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { startInspectorReceiver, type InspectorMessage } from '../helpers/inspector-receiver.js';
import { observeCommits, useRuntimes } from './runtime-fixtures.js';

interface Visibility {
  live: number;
  durable: number;
  registry: number | undefined;
}

type Seen = Pick<RegistryEntry, 'state' | 'activity' | 'progress' | 'pendingQuestionCount' | 'runningTaskCount'>;

for (const target of await databaseTargets()) {
  describe(`visibility on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;
    const startRuntime = useRuntimes(database);

    async function outboxOf(supervisorId: string) {
      return db().selectFrom('supervisor_outbox').select(['subject', 'payload', 'msg_id']).where('supervisor_id', '=', supervisorId).orderBy('id').execute();
    }

    /** The transaction that last wrote each row: equal ids mean one statement committed them together. */
    async function writerOf(table: 'supervisor_tasks' | 'supervisor_outbox' | 'supervisor_checkpoints', where: ReturnType<typeof sql>): Promise<string[]> {
      const result = await sql<{ xid: string }>`SELECT xmin::text AS xid FROM ${sql.table(table)} WHERE ${where}`.execute(db());
      return result.rows.map((row) => row.xid);
    }

    it('with no inspector the live actor is made on first read, from the newest commit, and follows every commit after', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'read later' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Ship on Friday?' });
      const actor = supervisor.actor;
      expect(actor.getSnapshot().value).toBe('waiting_for_user');
      expect(actor.getSnapshot().context).toEqual(supervisor.snapshot.context);

      await runtime.answerQuestion(supervisor.id, questionId, 'yes');
      await supervisor.send({ type: 'SET_PHASE', phase: 'build', at: new Date().toISOString() });
      expect(supervisor.actor).toBe(actor);
      expect(actor.getSnapshot().value).toBe(supervisor.state);
      expect(actor.getSnapshot().context).toEqual(supervisor.snapshot.context);
      expect(actor.getSnapshot().context).toMatchObject({ phase: 'build', pendingQuestions: [] });

      // Stopped before anyone read it: the actor made then is stopped as well, at the last committed state.
      const other = await runtime.spawn({ name: 'never read' });
      await other.stop();
      expect(other.actor.getSnapshot().status).toBe('stopped');
      expect(other.actor.getSnapshot().value).toBe(other.state);
    });

    it('a question is stored with its outbox message when send resolves, and shown by the actor and registry only after its commit', async () => {
      let supervisor: DurableSupervisor | undefined;
      const atCommit: Visibility[] = [];
      const observed = observeCommits(database(), (statement) => {
        if (statement.kind !== 'full' || !supervisor) return;
        atCommit.push({
          live: supervisor.actor.getSnapshot().context.pendingQuestions.length,
          durable: supervisor.snapshot.context.pendingQuestions.length,
          registry: runtime.registry.getSnapshot().context.supervisors[supervisor.id]?.pendingQuestionCount,
        });
      });
      const runtime = startRuntime({ database: observed });
      supervisor = await runtime.spawn({ name: 'asker' });
      atCommit.length = 0;

      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Ship on Friday?', choices: ['yes', 'no'] });

      // At the moment the statement had committed, nobody could see the question yet.
      expect(atCommit).toEqual([{ live: 0, durable: 0, registry: 0 }]);
      // When send resolves, the database has the question and the message that delivers it.
      const row = await getSupervisorState(db(), supervisor.id);
      expect(row?.pendingQuestions.map((q) => q.id)).toEqual([questionId]);
      expect(row?.state).toBe('waiting_for_user');
      const outbox = await outboxOf(supervisor.id);
      const questionMessages = outbox.filter((message) => message.subject === questionsSubject(supervisor.id));
      expect(questionMessages).toHaveLength(1);
      expect(questionMessages[0]?.payload).toMatchObject({ supervisorId: supervisor.id, questionId, question: 'Ship on Friday?', choices: ['yes', 'no'], redelivery: false });
      expect(questionMessages[0]?.msg_id).toBe(`${supervisor.id}:${supervisor.step}:0`);
      // And only now do the actor and the registry show it.
      expect(supervisor.actor.getSnapshot().context.pendingQuestions.map((q) => q.id)).toEqual([questionId]);
      expect(runtime.registry.getSnapshot().context.supervisors[supervisor.id]).toMatchObject({ state: 'waiting_for_user', pendingQuestionCount: 1 });
    });

    it('a spawned task row and its tasks.spawn outbox message are committed by the same statement as the save point', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'spawner' });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'index the repository' });

      expect(await getTask(db(), taskId)).toMatchObject({ id: taskId, supervisorId: supervisor.id, status: 'running', description: 'index the repository' });
      const spawns = (await outboxOf(supervisor.id)).filter((message) => message.subject === taskSpawnSubject());
      expect(spawns).toHaveLength(1);
      expect(spawns[0]?.payload).toMatchObject({ taskId, supervisorId: supervisor.id, description: 'index the repository' });
      // One transaction wrote the task row, the outbox message and the checkpoint: the relay can never see a
      // tasks.spawn message whose task id is not stored.
      const [taskWriter] = await writerOf('supervisor_tasks', sql`id = ${taskId}`);
      const [outboxWriter] = await writerOf('supervisor_outbox', sql`msg_id = ${spawns[0]?.msg_id ?? ''}`);
      const [checkpointWriter] = await writerOf('supervisor_checkpoints', sql`supervisor_id = ${supervisor.id} AND step = ${supervisor.step}`);
      expect(taskWriter).toBeDefined();
      expect([outboxWriter, checkpointWriter]).toEqual([taskWriter, taskWriter]);
      expect((await getSupervisorState(db(), supervisor.id))?.spawnedTaskIds).toEqual([taskId]);
    });

    it('the registry follows state, activity, progress and pending questions, and its subscribers see every change', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'watched' });
      const entry = () => runtime.registry.getSnapshot().context.supervisors[supervisor.id];
      expect(entry()).toMatchObject({ id: supervisor.id, name: 'watched', state: 'idle', activity: null, progress: 0, pendingQuestionCount: 0, degraded: false });

      const seen: Seen[] = [];
      const subscription = runtime.registry.subscribe((snapshot) => {
        const current = snapshot.context.supervisors[supervisor.id];
        if (!current) return;
        const { state, activity, progress, pendingQuestionCount, runningTaskCount } = current;
        seen.push({ state, activity, progress, pendingQuestionCount, runningTaskCount });
      });

      await runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'outlining', progress: 20 });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Which tone?' });
      await runtime.send(supervisor.id, { type: 'HEARTBEAT', activity: 'waiting', progress: 30 });
      await runtime.answerQuestion(supervisor.id, questionId, 'casual');
      await runtime.spawnTask(supervisor.id, { description: 'draft chapter 1' });
      subscription.unsubscribe();

      expect(seen).toEqual([
        { state: 'working', activity: 'outlining', progress: 20, pendingQuestionCount: 0, runningTaskCount: 0 },
        { state: 'waiting_for_user', activity: 'outlining', progress: 20, pendingQuestionCount: 1, runningTaskCount: 0 },
        { state: 'waiting_for_user', activity: 'waiting', progress: 30, pendingQuestionCount: 1, runningTaskCount: 0 },
        { state: 'working', activity: 'waiting', progress: 30, pendingQuestionCount: 0, runningTaskCount: 0 },
        { state: 'waiting_for_tasks', activity: 'waiting', progress: 30, pendingQuestionCount: 0, runningTaskCount: 1 },
      ]);
      await runtime.stop(supervisor.id);
      expect(entry()).toBeUndefined();
    });

    it('with inspect: { url }, a supervisor actor, its events and its snapshots reach a WebSocket inspector', async () => {
      const receiver = await startInspectorReceiver();
      try {
        const runtime = startRuntime({ inspect: { url: receiver.url } });
        const supervisor = await runtime.spawn({ name: 'inspected' });
        await runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'outlining', progress: 20 });
        const ofThisSupervisor = (message: InspectorMessage) => message.sessionId === supervisor.actor.sessionId;

        const actor = await receiver.waitFor((message) => message.type === '@xstate.actor' && ofThisSupervisor(message));
        expect(actor.name).toBe(`supervisor:${supervisor.id}`);
        expect(actor.snapshot?.context?.supervisorId).toBe(supervisor.id);
        const started = await receiver.waitFor((message) => message.type === '@xstate.event' && ofThisSupervisor(message) && message.event?.type === 'START');
        expect(started.event?.at).toEqual(expect.any(String));
        const working = await receiver.waitFor(
          (message) => message.type === '@xstate.snapshot' && ofThisSupervisor(message) && message.snapshot?.value === 'working',
        );
        expect(working.event?.type).toBe('SET_ACTIVITY');
        expect(working.snapshot?.context).toMatchObject({ supervisorId: supervisor.id, currentActivity: 'outlining', progress: 20 });
        await runtime.shutdown({ closeDatabase: false });
      } finally {
        await receiver.close();
      }
    });
  });
}
