import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import { SupervisorNotFoundError } from '../../src/domain/errors.js';
import type { Database } from '../../src/persistence/database.js';
import {
  getConversation,
  getSupervisorState,
  listCheckpoints,
  recordTaskOutcome,
} from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { recordInbound } from '../../src/persistence/ownership/inbox.js';
import { checkStoredStates } from '../../src/runtime/check.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

/** A runtime over a database it does not own: "crashing" it just abandons it, like kill -9 would. */
function runtimeOn(database: Database, options: Partial<Parameters<typeof createRuntime>[0]> = {}): SupervisorRuntime {
  const runtime = createRuntime({ database, heartbeatIntervalMs: 0, ...options });
  return runtime;
}

async function crash(runtime: SupervisorRuntime): Promise<void> {
  // Queued steps were awaited by the caller already; stop timers without writing anything more.
  await runtime.shutdown({ closeDatabase: false, closeTransport: false });
}

/** waiting_for_user with two questions and two running tasks, in phase execution. */
/** Overwrite the snapshot of the checkpoint the row points to (where a supervisor's current snapshot is stored). */
function corruptSnapshot(id: string, value: ReturnType<typeof sql>) {
  return sql`UPDATE supervisor_checkpoints c SET snapshot = ${value} FROM supervisor_states s WHERE s.id = c.supervisor_id AND c.seq = s.checkpoint_seq AND s.id = ${id}`;
}

/** Drop the hold from every stored snapshot of a supervisor: what a creation that was to start (or one from before holds) stored. */
function unhold(id: string) {
  return sql`UPDATE supervisor_checkpoints SET snapshot = snapshot #- '{context,held}' WHERE supervisor_id = ${id}`;
}

async function busySupervisor(runtime: SupervisorRuntime) {
  const supervisor = await runtime.spawn({ name: 'busy' });
  await runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'building', progress: 30 });
  await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' });
  const t1 = await runtime.spawnTask(supervisor.id, { description: 'compile' });
  const t2 = await runtime.spawnTask(supervisor.id, { description: 'test' });
  const q1 = await runtime.askQuestion(supervisor.id, { question: 'Ship on Friday?', choices: ['yes', 'no'] });
  const q2 = await runtime.askQuestion(supervisor.id, { question: 'Which region?' });
  return { id: supervisor.id, tasks: [t1.taskId, t2.taskId], questions: [q1.questionId, q2.questionId] };
}

for (const target of await databaseTargets()) {
  describe(`restoration protocol on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('a supervisor waiting for its human with running tasks comes back exactly, questions re-delivered, and then finishes', async () => {
      const first = runtimeOn(database());
      const busy = await busySupervisor(first);
      const before = first.get(busy.id)?.snapshot.context;
      await crash(first);

      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary).toMatchObject({ total: 1, restored: 1, fromCheckpoint: 0, startedFresh: 0, failed: [] });
      const info = summary.results[0];
      expect(info).toMatchObject({
        supervisorId: busy.id,
        source: 'daemon_restart',
        recoveryAction: 'restore',
        restoredState: 'waiting_for_user',
        restoredPhase: 'execution',
        checkpointSeq: null,
        restorationCount: 1,
        tasksResumed: busy.tasks,
      });
      expect(info?.validation.valid).toBe(true);
      expect(info?.questionsRedelivered.map((q) => [q.id, q.deliveryCount])).toEqual(busy.questions.map((id) => [id, 2]));
      expect(info?.contextMessage).toMatch(/restored at .* because the daemon that ran you stopped/);
      expect(info?.contextMessage).toContain('Ship on Friday?');
      expect(info?.contextMessage).toMatch(/compile\): still running/);

      const restored = second.get(busy.id);
      expect(restored?.snapshot.context).toMatchObject({
        phase: 'execution',
        currentActivity: 'building',
        progress: 30,
        tasks: before?.tasks,
        restorationCount: 1,
        restorationSource: 'daemon_restart',
      });
      const row = await getSupervisorState(db(), busy.id);
      expect(row).toMatchObject({ state: 'waiting_for_user', restorationCount: 1, restorationSource: 'daemon_restart' });
      expect(row?.pendingQuestions.map((q) => q.deliveryCount)).toEqual([2, 2]);
      expect(row?.lastRestoredAt).not.toBeNull();
      const conversation = await getConversation(db(), busy.id);
      expect(conversation.at(-1)).toMatchObject({ role: 'system', content: info?.contextMessage });
      expect(conversation.map((entry) => entry.seq)).toEqual(conversation.map((_, index) => index));
      const redeliveries = await db().selectFrom('supervisor_outbox').select(['subject', 'payload']).where('supervisor_id', '=', busy.id).execute();
      const redelivered = redeliveries.filter((row) => (row.payload as { redelivery?: boolean }).redelivery === true);
      expect(redelivered.map((row) => (row.payload as { questionId: string }).questionId).sort()).toEqual([...busy.questions].sort());

      await second.answerQuestion(busy.id, busy.questions[0] as string, 'yes');
      await second.answerQuestion(busy.id, busy.questions[1] as string, 'eu-west');
      for (const taskId of busy.tasks) await second.reportTaskEvent(taskId, { type: 'completed', result: 'ok' });
      await second.send(busy.id, { type: 'COMPLETE' });
      expect((await getSupervisorState(db(), busy.id))?.state).toBe('completed');
      await second.shutdown({ closeDatabase: false });
    });

    it('the notice dates the last sign of life from the newest of its heartbeat and its last save point', async () => {
      const first = runtimeOn(database());
      const busy = await busySupervisor(first);
      await crash(first);
      // The last heartbeat an hour before the last save point (heartbeats run every 15 s; save points in between).
      const { rows } = await sql<{ updated_at: Date }>`UPDATE supervisor_states SET last_heartbeat = updated_at - interval '1 hour' WHERE id = ${busy.id} RETURNING updated_at`.execute(db());
      const lastSave = new Date(rows[0]!.updated_at).toISOString();
      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary.results[0]?.contextMessage).toContain(`You were last known alive at ${lastSave}.`);
      await crash(second);
      // A heartbeat after the last save point is the later sign.
      const beat = new Date(Date.now() + 60_000);
      await sql`UPDATE supervisor_states SET last_heartbeat = ${beat} WHERE id = ${busy.id}`.execute(db());
      const third = runtimeOn(database());
      expect((await third.restoreAll()).results[0]?.contextMessage).toContain(`You were last known alive at ${beat.toISOString()}.`);
      await crash(third);
    });

    it('a question whose answer another daemon recorded in the inbox meanwhile is not delivered again, and the answer is applied after the restore', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'answered while down' });
      const answered = await first.askQuestion(supervisor.id, { question: 'Deploy?' });
      const open = await first.askQuestion(supervisor.id, { question: 'Which region?' });
      await crash(first);
      // Another daemon received the human's answer and recorded it for the owner, which is gone.
      const recorded = await recordInbound(db(), { kind: 'answer', supervisorId: supervisor.id, payload: { v: 1, questionId: answered.questionId, answer: 'yes' }, msgId: 'answer-while-down', epoch: null, receivedBy: 'peer' }, null);
      expect(recorded.outcome).toBe('recorded');
      expect((await checkStoredStates(db(), { supervisorIds: [supervisor.id] })).supervisors[0]?.warnings).toContain(
        `question ${answered.questionId} has an answer waiting in the inbox: applied after the restore, not delivered again`,
      );
      const second = runtimeOn(database());
      const summary = await second.start({ messaging: false });
      const info = summary.results.find((result) => result.supervisorId === supervisor.id);
      expect(info?.questionsRedelivered.map((question) => question.id)).toEqual([open.questionId]);
      expect(info?.contextMessage).toMatch(new RegExp(`Questions still open \\(delivered again to the human\\):\\n- ${open.questionId}: Which region\\?\\nQuestions answered while you were down \\(the answer reaches you next\\):\\n- ${answered.questionId}: Deploy\\?`));
      // The owner applies the inbox once the restore is stored.
      for (let attempt = 0; attempt < 500 && second.get(supervisor.id)?.snapshot.context.answeredQuestionCount !== 1; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
      const context = second.get(supervisor.id)?.snapshot.context;
      expect(context?.answeredQuestionCount).toBe(1);
      expect(context?.pendingQuestions.map((question) => [question.id, question.deliveryCount])).toEqual([[open.questionId, 2]]);
      const deliveries = await sql<{ n: string }>`SELECT count(*)::text AS n FROM supervisor_outbox WHERE supervisor_id = ${supervisor.id} AND payload ->> 'questionId' = ${answered.questionId}`.execute(db());
      expect(deliveries.rows[0]?.n).toBe('1');
      await second.shutdown({ closeDatabase: false });
    });

    it('tasks that finished or vanished while the daemon was down are applied or dropped during restoration', async () => {
      const first = runtimeOn(database());
      const busy = await busySupervisor(first);
      await crash(first);
      await recordTaskOutcome(db(), busy.tasks[0] as string, { status: 'completed', result: 'binary built' });
      await sql`DELETE FROM supervisor_tasks WHERE id = ${busy.tasks[1] as string}`.execute(db());

      const second = runtimeOn(database());
      const info = await second.restore(busy.id, 'manual');
      expect(info.recoveryAction).toBe('restore');
      expect(info.tasksReconciled).toEqual([
        { taskId: busy.tasks[0], description: 'compile', status: 'completed', action: 'applied_completion', outcome: 'binary built' },
        { taskId: busy.tasks[1], description: 'test', status: 'missing', action: 'dropped', outcome: null },
      ]);
      expect(info.tasksResumed).toEqual([]);
      expect(info.warnings.join(' ')).toMatch(/does not exist/);
      expect(info.contextMessage).toMatch(/completed while you were down: binary built/);
      // Both finished: they left the snapshot (open work only), and their rows say how they ended.
      expect(second.get(busy.id)?.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 1, failedTaskCount: 1 });
      expect((await second.tasks(busy.id)).map((task) => task.status)).toEqual(['completed', 'failed']);
      expect(info.restoredState).toBe('waiting_for_user');
      await second.shutdown({ closeDatabase: false });
    });

    it('the agent driver acts only after the restoration committed: tasks that finished while down do not race the context message', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'scripted', driver: 'scripted' });
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && supervisor.snapshot.context.pendingQuestions.length === 0) await new Promise((r) => setTimeout(r, 20));
      const question = supervisor.snapshot.context.pendingQuestions[0];
      expect(question).toBeDefined();
      await first.answerQuestion(supervisor.id, question!.id, 'incremental');
      const taskIds = supervisor.snapshot.context.tasks.map((task) => task.id);
      await crash(first);
      for (const taskId of taskIds) await recordTaskOutcome(db(), taskId, { status: 'completed', result: 'done offline' });

      const second = runtimeOn(database());
      const info = await second.restore(supervisor.id, 'daemon_restart');
      // The restoration saw the work finished and told the LLM so; the driver had not completed it yet.
      expect(info.restoredState).toBe('working');
      expect(info.contextMessage).toMatch(/completed while you were down: done offline/);
      const restored = second.get(supervisor.id);
      const until = Date.now() + 5_000;
      while (Date.now() < until && restored?.state !== 'completed') await new Promise((r) => setTimeout(r, 20));
      expect(restored?.state).toBe('completed');
      const reasons = (await listCheckpoints(db(), supervisor.id, { limit: 10 })).map((c) => c.reason).reverse();
      expect(reasons.slice(-5)).toEqual(['task_completed', 'task_completed', 'restored', 'phase_changed', 'completed']);
      await second.shutdown({ closeDatabase: false });
    });

    it('a driver callback for a task reconciled during restoration runs only once the restoration is stored', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'recorded' });
      const { taskId } = await first.spawnTask(supervisor.id, { description: 'offline work' });
      await crash(first);
      await recordTaskOutcome(db(), taskId, { status: 'completed', result: 'ok' });
      const seen: Array<{ callback: string; storedRestorationCount: number | undefined }> = [];
      // Each entry is placed when its callback is called, and its stored count filled in after the read: the order is
      // the order of the calls, not of two reads racing each other.
      const record = async (callback: string, id: string) => {
        const entry: { callback: string; storedRestorationCount: number | undefined } = { callback, storedRestorationCount: undefined };
        seen.push(entry);
        entry.storedRestorationCount = (await getSupervisorState(db(), id))?.restorationCount;
      };
      const recording: AgentDriver = {
        name: 'manual',
        onTaskFinished: (handle) => record('onTaskFinished', handle.id),
        onRestored: (handle) => record('onRestored', handle.id),
      };
      const second = runtimeOn(database(), { drivers: [recording] });
      await second.restore(supervisor.id, 'daemon_restart');
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && (seen.length < 2 || seen.some((entry) => entry.storedRestorationCount === undefined))) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual([
        { callback: 'onTaskFinished', storedRestorationCount: 1 },
        { callback: 'onRestored', storedRestorationCount: 1 },
      ]);
      await second.shutdown({ closeDatabase: false });
    });

    it('the heartbeat resumes with its remaining time: not at once, not a full interval later', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'beating' });
      await crash(first);
      // The last beat was 2 s ago with a 3 s interval: the next one is due about 1 s after the restore (not at once,
      // and not 3 s later), and the checks at 0.4 s and 2.2 s leave a wide margin on a loaded machine.
      await sql`UPDATE supervisor_states SET last_heartbeat = now() - interval '2000 milliseconds' WHERE id = ${supervisor.id}`.execute(db());
      const stored = (await getSupervisorState(db(), supervisor.id))?.lastHeartbeat;
      const second = runtimeOn(database(), { heartbeatIntervalMs: 3_000 });
      await second.restore(supervisor.id, 'daemon_restart');
      const restoredAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect((await getSupervisorState(db(), supervisor.id))?.lastHeartbeat).toBe(stored);
      await new Promise((resolve) => setTimeout(resolve, 1_800));
      const row = await getSupervisorState(db(), supervisor.id);
      expect(Date.parse(row?.lastHeartbeat ?? '')).toBeGreaterThanOrEqual(restoredAt + 300);
      await second.shutdown({ closeDatabase: false });
    });

    describe('a corrupt newest row falls back to the newest valid checkpoint', () => {
      // Each corruption names what it breaks: the row's columns, or the snapshot (stored once, in the current checkpoint).
      const corruptions: Array<[string, (id: string) => ReturnType<typeof sql> | Array<ReturnType<typeof sql>>, ('row' | 'snapshot')?]> = [
        ['the snapshot does not parse', (id) => corruptSnapshot(id, sql`'"garbage"'::jsonb`), 'snapshot'],
        ['the snapshot state is not a supervisor state', (id) => corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{value}', '"sleeping"')`), 'snapshot'],
        ['the machine version is not supported', (id) => sql`UPDATE supervisor_states SET machine_version = 99 WHERE id = ${id}`],
        ['the snapshot state differs from the row state', (id) => sql`UPDATE supervisor_states SET state = 'working' WHERE id = ${id}`],
        ['progress is outside 0–100', (id) => corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,progress}', '150')`), 'snapshot'],
        // Shapes the save path refuses: restoring them would fail at the RESTORED save point (and so would interrupting them).
        ['a pending question has choices that are no list', (id) => corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,pendingQuestions,0,choices}', '5')`), 'snapshot'],
        ['a counter does not fit its integer column', (id) => corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,conversationLength}', '100000000000')`), 'snapshot'],
        ['a task has progress outside 0–100', (id) => corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,tasks,0,progress}', '500')`), 'snapshot'],
        [
          'waiting_for_user has no pending question',
          (id) => [sql`UPDATE supervisor_states SET pending_questions = '[]' WHERE id = ${id}`, corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,pendingQuestions}', '[]')`)],
          'snapshot',
        ],
        [
          'failed has no error message',
          (id) => [sql`UPDATE supervisor_states SET state = 'failed', error_message = NULL WHERE id = ${id}`, corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{value}', '"failed"')`)],
          'snapshot',
        ],
        ['a spawned task id does not match the snapshot', (id) => sql`UPDATE supervisor_states SET spawned_task_ids = array_append(spawned_task_ids, 'ghost') WHERE id = ${id}`],
        [
          'pending question ids are not unique',
          (id) =>
            [
              sql`UPDATE supervisor_states SET pending_questions = pending_questions || pending_questions WHERE id = ${id}`,
              corruptSnapshot(id, sql`jsonb_set(c.snapshot, '{context,pendingQuestions}', (c.snapshot #> '{context,pendingQuestions}') || (c.snapshot #> '{context,pendingQuestions}'))`),
            ],
          'snapshot',
        ],
      ];
      for (const [guard, corrupt, target = 'row'] of corruptions) {
        it(`when ${guard}`, async () => {
          const first = runtimeOn(database());
          const busy = await busySupervisor(first);
          await crash(first);
          const newest = (await listCheckpoints(db(), busy.id, { limit: 1 }))[0];
          for (const statement of [corrupt(busy.id)].flat()) await statement.execute(db());
          const second = runtimeOn(database());
          const info = await second.restore(busy.id, 'daemon_restart');
          expect(info.validation.valid).toBe(false);
          expect(info.validation.errors.length).toBeGreaterThan(0);
          expect(info.recoveryAction).toBe('restore_from_checkpoint');
          if (target === 'row') {
            // Only the row's columns were broken: the newest checkpoint still holds the state they described.
            expect(info.checkpointSeq).toBe(newest?.seq);
          } else {
            // The snapshot is stored once, in the newest checkpoint: the one before it (before the second question) is
            // used, and supervisor_questions brings back the question asked after it, so nothing open is lost.
            expect(info.checkpointSeq).toBe((newest?.seq ?? 0) - 1);
            expect(info.warnings).toContain(`question ${busy.questions[1]} was asked after the restored state: pending again`);
          }
          expect(info.restoredState).toBe('waiting_for_user');
          expect(info.questionsRedelivered.map((question) => question.id)).toEqual(busy.questions);
          expect((await getSupervisorState(db(), busy.id))?.state).toBe('waiting_for_user');
          await second.shutdown({ closeDatabase: false });
        });
      }

      // The driver's callbacks, by name, in the order they were called.
      const recordingDriver = (seen: string[]): AgentDriver => ({
        name: 'manual',
        onTaskFinished: (_, task) => void seen.push(`onTaskFinished ${task.taskId}`),
        onQuestionAnswered: (_, answer) => void seen.push(`onQuestionAnswered ${answer.questionId}`),
        onRestored: () => void seen.push('onRestored'),
      });
      const untilRestored = async (seen: string[]) => {
        for (let attempt = 0; attempt < 250 && !seen.includes('onRestored'); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(seen).toContain('onRestored');
      };

      for (const recordedByWorker of [false, true]) {
        it(`a task completion applied after the checkpoint used is not applied again: one conversation entry, the driver not told twice (${recordedByWorker ? 'its worker recorded it first' : 'reported as an event'})`, async () => {
          const first = runtimeOn(database());
          const supervisor = await first.spawn({ name: 'applied before the crash' });
          const done = await first.spawnTask(supervisor.id, { description: 'compile' });
          const open = await first.spawnTask(supervisor.id, { description: 'test' });
          if (recordedByWorker) await recordTaskOutcome(db(), done.taskId, { status: 'completed', result: 'binary built' });
          await first.reportTaskEvent(done.taskId, { type: 'completed', result: 'binary built' });
          await crash(first);
          const entry = `Task ${done.taskId} completed: binary built`;
          expect((await getConversation(db(), supervisor.id)).filter((e) => e.content === entry)).toHaveLength(1);
          // The newest checkpoint (the completion's) is lost: the one before it still has the task running.
          const newest = (await listCheckpoints(db(), supervisor.id, { limit: 1 }))[0];
          expect(newest?.reason).toBe('task_completed');
          await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());

          const seen: string[] = [];
          const second = runtimeOn(database(), { drivers: [recordingDriver(seen)] });
          const info = await second.restore(supervisor.id, 'daemon_restart');
          expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', checkpointSeq: (newest?.seq ?? 0) - 1, restoredState: 'waiting_for_tasks' });
          await untilRestored(seen);
          const conversation = await getConversation(db(), supervisor.id);
          expect(conversation.filter((e) => e.content === entry)).toHaveLength(1);
          expect(conversation.map((e) => e.seq)).toEqual(conversation.map((_, index) => index));
          expect(seen).toEqual(['onRestored']);
          expect(info.tasksReconciled).toEqual([{ taskId: open.taskId, description: 'test', status: 'running', action: 'resumed', outcome: null }]);
          expect(info.warnings).toContain(`task ${done.taskId} finished after the restored state and its outcome was applied then: not applied again`);
          expect(info.contextMessage).not.toMatch(/completed while you were down/);
          expect(second.get(supervisor.id)?.snapshot.context).toMatchObject({ tasks: [expect.objectContaining({ id: open.taskId })], completedTaskCount: 1, failedTaskCount: 0 });
          // The check (dry run) of the same stored state says the same.
          await crash(second);
          await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
          const checked = (await checkStoredStates(db(), { supervisorIds: [supervisor.id] })).supervisors[0];
          expect(checked?.warnings.join('\n')).not.toMatch(/its result would be applied/);
        });
      }

      it('a task that finished while nobody ran the supervisor, never applied, is applied once after a fallback too', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'finished while down' });
        const { taskId } = await first.spawnTask(supervisor.id, { description: 'compile' });
        await first.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' });
        await crash(first);
        await recordTaskOutcome(db(), taskId, { status: 'completed', result: 'binary built' });
        await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
        expect((await checkStoredStates(db(), { supervisorIds: [supervisor.id] })).supervisors[0]?.warnings).toContain(`task ${taskId} completed while nobody ran the supervisor: its result would be applied`);
        const seen: string[] = [];
        const second = runtimeOn(database(), { drivers: [recordingDriver(seen)] });
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', restoredState: 'working' });
        expect(info.tasksReconciled).toEqual([{ taskId, description: 'compile', status: 'completed', action: 'applied_completion', outcome: 'binary built' }]);
        await untilRestored(seen);
        expect(seen).toEqual([`onTaskFinished ${taskId}`, 'onRestored']);
        expect((await getConversation(db(), supervisor.id)).filter((e) => e.content === `Task ${taskId} completed: binary built`)).toHaveLength(1);
        expect(second.get(supervisor.id)?.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 1 });
        await second.shutdown({ closeDatabase: false });
      });

      it('an answer applied after the checkpoint used is not applied again: one conversation entry, the driver not told twice', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'answered before the crash' });
        const { questionId } = await first.askQuestion(supervisor.id, { question: 'Deploy?' });
        await first.answerQuestion(supervisor.id, questionId, 'yes, deploy');
        await crash(first);
        const newest = (await listCheckpoints(db(), supervisor.id, { limit: 1 }))[0];
        expect(newest?.reason).toBe('question_answered');
        await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
        const seen: string[] = [];
        const second = runtimeOn(database(), { drivers: [recordingDriver(seen)] });
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', checkpointSeq: (newest?.seq ?? 0) - 1, restoredState: 'working', questionsRedelivered: [] });
        expect(info.warnings).toContain(`question ${questionId} was answered after the restored state: applied its answer`);
        await untilRestored(seen);
        expect(seen).toEqual(['onRestored']);
        expect((await getConversation(db(), supervisor.id)).filter((e) => e.content === 'yes, deploy')).toHaveLength(1);
        expect(second.get(supervisor.id)?.snapshot.context).toMatchObject({ pendingQuestions: [], answeredQuestionCount: 1 });
        await second.shutdown({ closeDatabase: false });
      });

      it('a question withdrawn after the checkpoint used stays withdrawn: its row, not the older snapshot, decides', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'withdrawn' });
        const kept = await first.askQuestion(supervisor.id, { question: 'Keep this one?' });
        const dropped = await first.askQuestion(supervisor.id, { question: 'Drop this one?' });
        await first.withdrawQuestion(supervisor.id, dropped.questionId, 'not needed');
        await crash(first);
        const newest = (await listCheckpoints(db(), supervisor.id, { limit: 1 }))[0];
        await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        // The checkpoint before the withdrawal still lists the dropped question as pending.
        expect(info.checkpointSeq).toBe((newest?.seq ?? 0) - 1);
        expect(info.warnings).toContain(`question ${dropped.questionId} was withdrawn after the restored state: no longer pending`);
        expect(info.questionsRedelivered.map((question) => question.id)).toEqual([kept.questionId]);
        expect(second.get(supervisor.id)?.snapshot.context.pendingQuestions.map((question) => question.id)).toEqual([kept.questionId]);
        await second.shutdown({ closeDatabase: false });
      });

      it('a question asked after the idle checkpoint used is pending again, and the supervisor waits for its answer (and takes it)', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'idle fallback' });
        const { questionId } = await first.askQuestion(supervisor.id, { question: 'Proceed?' });
        await crash(first);
        await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info.recoveryAction).toBe('restore_from_checkpoint');
        expect(info.warnings).toContain(`question ${questionId} was asked after the restored state: pending again`);
        expect(info.restoredState).toBe('waiting_for_user');
        await second.answerQuestion(supervisor.id, questionId, 'yes');
        expect(second.get(supervisor.id)?.state).toBe('working');
        await second.shutdown({ closeDatabase: false });
      });

      it('a stored state that holds a pending question outside waiting_for_user waits for its human again, so the answer is taken', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'working with a question' });
        await first.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'reading' });
        const { questionId } = await first.askQuestion(supervisor.id, { question: 'Continue?' });
        await crash(first);
        // Written outside the machine: row and snapshot agree on working, the question still pending in both.
        await sql`UPDATE supervisor_states SET state = 'working' WHERE id = ${supervisor.id}`.execute(db());
        await corruptSnapshot(supervisor.id, sql`jsonb_set(c.snapshot, '{value}', '"working"')`).execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info).toMatchObject({ recoveryAction: 'restore', restoredState: 'waiting_for_user' });
        expect(info.warnings).toContain('state working had 1 pending question(s): waiting for the human again');
        expect(info.questionsRedelivered.map((question) => question.id)).toEqual([questionId]);
        await second.answerQuestion(supervisor.id, questionId, 'yes');
        expect(second.get(supervisor.id)?.state).toBe('working');
        await second.shutdown({ closeDatabase: false });
      });

      it('an older checkpoint from before START, settled into waiting_for_user by a question the tables bring back, still takes START: the "started" entry is there, and the answer is taken', async () => {
        const first = runtimeOn(database());
        // Never started: paused by an operator while still initializing (checkpoint "created", then "interrupted").
        const supervisor = await first.spawn({ name: 'unstarted with a question', start: false });
        const [created] = await listCheckpoints(db(), supervisor.id, { limit: 1 });
        await first.send(supervisor.id, { type: 'INTERRUPT', reason: 'paused before it started' });
        await crash(first);
        // A question recorded outside the runtime (a seed, an import): the tables know it, no snapshot does.
        const questionId = 'imported-question';
        await sql`INSERT INTO supervisor_questions (supervisor_id, id, question, asked_at) VALUES (${supervisor.id}, ${questionId}, 'Which region first?', now())`.execute(db());
        // The interrupted snapshot is unreadable: the walk falls back to the initializing checkpoint before it.
        await corruptSnapshot(supervisor.id, sql`'"garbage"'::jsonb`).execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', checkpointSeq: created?.seq, restoredState: 'waiting_for_user' });
        expect(created?.state).toBe('initializing');
        expect(info.warnings).toContain(`question ${questionId} was asked after the restored state: pending again`);
        const started = (await getConversation(db(), supervisor.id)).filter((entry) => entry.content === 'Supervisor "unstarted with a question" started in phase planning.');
        expect(started).toHaveLength(1);
        expect(info.questionsRedelivered.map((question) => question.id)).toEqual([questionId]);
        await second.answerQuestion(supervisor.id, questionId, 'EU');
        expect(second.get(supervisor.id)?.state).toBe('working');
        await second.shutdown({ closeDatabase: false });
      });

      it('an older checkpoint from before START of a supervisor that did start (its "started" entry is stored) is not started twice', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'started once' });
        const { questionId } = await first.askQuestion(supervisor.id, { question: 'Proceed?' });
        await crash(first);
        // Every checkpoint after the initializing one is unreadable.
        await sql`UPDATE supervisor_checkpoints SET snapshot = '"garbage"'::jsonb WHERE supervisor_id = ${supervisor.id} AND state <> 'initializing'`.execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', restoredState: 'waiting_for_user' });
        expect(info.warnings).toContain(`question ${questionId} was asked after the restored state: pending again`);
        const started = (await getConversation(db(), supervisor.id)).filter((entry) => entry.content === 'Supervisor "started once" started in phase planning.');
        expect(started.map((entry) => entry.seq)).toEqual([0]);
        await second.shutdown({ closeDatabase: false });
      });

      it('when waiting_for_tasks has no running task, an older checkpoint that passes is used', async () => {
        const first = runtimeOn(database());
        const supervisor = await first.spawn({ name: 'tasks' });
        const { taskId } = await first.spawnTask(supervisor.id, { description: 'work' });
        await crash(first);
        await corruptSnapshot(supervisor.id, sql`jsonb_set(c.snapshot, '{context,tasks,0,status}', '"completed"')`).execute(db());
        await sql`DELETE FROM supervisor_tasks WHERE id = ${taskId}`.execute(db());
        const second = runtimeOn(database());
        const info = await second.restore(supervisor.id, 'daemon_restart');
        expect(info.validation.errors.join(' ')).toMatch(/waiting_for_tasks has no running task/);
        expect(info.recoveryAction).toBe('restore_from_checkpoint');
        // Checkpoints with the (now missing) running task fail the same guard: the one before the spawn is restored.
        expect(info.restoredState).toBe('idle');
        await second.shutdown({ closeDatabase: false });
      });
    });

    it('the walk takes a checkpoint an older machine version wrote (finished tasks still listed in its context) once it migrates', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'v1' });
      const { taskId } = await first.spawnTask(supervisor.id, { description: 'build' });
      await first.reportTaskEvent(taskId, { type: 'completed', result: 'ok' });
      await first.send(supervisor.id, { type: 'SET_PHASE', phase: 'execution' });
      await crash(first);
      const checkpoints = await listCheckpoints(db(), supervisor.id, { limit: 10 });
      const completed = checkpoints.find((checkpoint) => checkpoint.reason === 'task_completed');
      const current = checkpoints[0];
      if (!completed || !current) throw new Error('expected a task_completed checkpoint and a newer one');
      // The shape version 1 wrote: the finished task stays in context.tasks, answers are a list, no counters.
      const at = new Date().toISOString();
      const v1 = structuredClone(completed.snapshot) as { context: Record<string, unknown> };
      v1.context.tasks = [{ id: taskId, description: 'build', status: 'completed', progress: 100, result: 'ok', error: null, spawnedAt: at, finishedAt: at }];
      v1.context.answeredQuestions = [];
      delete v1.context.answeredQuestionCount;
      delete v1.context.completedTaskCount;
      delete v1.context.failedTaskCount;
      await sql`UPDATE supervisor_checkpoints SET snapshot = ${JSON.stringify(v1)}::jsonb, machine_version = 1 WHERE supervisor_id = ${supervisor.id} AND seq = ${completed.seq}`.execute(db());
      await sql`UPDATE supervisor_checkpoints SET snapshot = '"garbage"'::jsonb WHERE supervisor_id = ${supervisor.id} AND seq = ${current.seq}`.execute(db());
      const second = runtimeOn(database());
      const info = await second.restore(supervisor.id, 'daemon_restart');
      expect(info).toMatchObject({ recoveryAction: 'restore_from_checkpoint', checkpointSeq: completed.seq, restoredState: 'working', tasksReconciled: [] });
      expect(info.warnings).toContain('snapshot migrated from machine version 1');
      expect(second.get(supervisor.id)?.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 1 });
      await second.shutdown({ closeDatabase: false });
    });

    it('restore-all also examines a row corrupted into a finished state (column failed, no error, snapshot waiting for its human) and restores it from the newest valid checkpoint; rows that really finished are left alone', async () => {
      const first = runtimeOn(database());
      const busy = await busySupervisor(first);
      const done = await first.spawn({ name: 'really done' });
      await first.send(done.id, { type: 'COMPLETE' });
      await crash(first);
      const newest = (await listCheckpoints(db(), busy.id, { limit: 1 }))[0];
      await sql`UPDATE supervisor_states SET state = 'failed', error_message = NULL WHERE id = ${busy.id}`.execute(db());
      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary).toMatchObject({ total: 1, restored: 1, fromCheckpoint: 1, failed: [] });
      expect(summary.results[0]).toMatchObject({ supervisorId: busy.id, recoveryAction: 'restore_from_checkpoint', checkpointSeq: newest?.seq, restoredState: 'waiting_for_user' });
      expect(await getSupervisorState(db(), busy.id)).toMatchObject({ state: 'waiting_for_user', errorMessage: null });
      expect(second.get(busy.id)?.snapshot.context.pendingQuestions.map((q) => q.id)).toEqual(busy.questions);
      expect(second.get(done.id)).toBeUndefined();
      expect((await getSupervisorState(db(), done.id))?.restorationCount).toBe(0);
      await second.shutdown({ closeDatabase: false });
    });

    it('with no valid checkpoint it starts fresh, keeps a copy of the bad row in quarantine and leaves the checkpoints untouched', async () => {
      const first = runtimeOn(database());
      const busy = await busySupervisor(first);
      await crash(first);
      const checkpointsBefore = await listCheckpoints(db(), busy.id, { limit: 1000 });
      await sql`UPDATE supervisor_states SET machine_version = 99 WHERE id = ${busy.id}`.execute(db());
      await sql`UPDATE supervisor_checkpoints SET machine_version = 99 WHERE supervisor_id = ${busy.id}`.execute(db());
      const second = runtimeOn(database());
      const info = await second.restore(busy.id, 'daemon_restart');
      expect(info.recoveryAction).toBe('start_fresh');
      expect(info.warnings.join(' ')).toMatch(/no valid checkpoint/);
      expect(info.restoredState).toBe('idle');
      const quarantined = await db().selectFrom('supervisor_quarantine').selectAll().where('supervisor_id', '=', busy.id).execute();
      expect(quarantined).toHaveLength(1);
      expect((quarantined[0]?.row_data as { machine_version: number }).machine_version).toBe(99);
      const checkpointsAfter = await listCheckpoints(db(), busy.id, { limit: 1000 });
      const oldSeqs = new Set(checkpointsBefore.map((c) => c.seq));
      expect(checkpointsAfter.filter((c) => oldSeqs.has(c.seq))).toEqual(checkpointsBefore.map((c) => ({ ...c, machineVersion: 99 })));
      // The fresh supervisor continues the conversation after the old entries instead of colliding with them.
      const conversation = await getConversation(db(), busy.id);
      expect(conversation.map((entry) => entry.seq)).toEqual(conversation.map((_, index) => index));
      // The old life's open work ended with it: its questions are withdrawn and its tasks failed, with the reason...
      const questions = await second.questions(busy.id);
      expect(questions.map((question) => [question.id, question.withdrawnReason]).sort()).toEqual([...busy.questions].sort().map((id) => [id, expect.stringMatching(/started fresh/)]));
      const tasks = await second.tasks(busy.id);
      expect(tasks.map((task) => [task.id, task.status, task.error]).sort()).toEqual([...busy.tasks].sort().map((id) => [id, 'failed', expect.stringMatching(/started fresh/)]));
      // ...so the next restart does not hand them to the fresh supervisor as work it left open.
      await crash(second);
      const third = runtimeOn(database());
      const again = await third.restore(busy.id, 'daemon_restart');
      expect(again).toMatchObject({ recoveryAction: 'restore', restoredState: 'idle', questionsRedelivered: [], tasksResumed: [], warnings: [] });
      expect(third.get(busy.id)?.snapshot.context).toMatchObject({ pendingQuestions: [], tasks: [] });
      await third.shutdown({ closeDatabase: false });
    });

    it('an id that was never stored is not found, and with startFreshIfMissing starts fresh with a warning, owned by this daemon', async () => {
      const runtime = runtimeOn(database());
      const id = randomUUID();
      await expect(runtime.resume(id)).rejects.toBeInstanceOf(SupervisorNotFoundError);
      expect(await getSupervisorState(db(), id)).toBeNull();
      const info = await runtime.resume(id, { startFreshIfMissing: true });
      expect(info).toMatchObject({ source: 'manual', recoveryAction: 'start_fresh', restoredState: 'idle', restorationCount: 1 });
      expect(info.warnings).toContain('no stored state: starting fresh');
      expect(await getSupervisorState(db(), id)).toMatchObject({ restorationSource: 'manual', owner: runtime.daemonId, epoch: 1 });
      expect(runtime.get(id)?.state).toBe('idle');
      await runtime.shutdown({ closeDatabase: false });
    });

    it('a supervisor spawned with start: false stays initializing across restarts (restored and counted, its driver told nothing) until it is sent START', async () => {
      const calls: string[] = [];
      const driver: AgentDriver = {
        name: 'rec',
        onStarted: () => void calls.push('started'),
        onRestored: () => void calls.push('restored'),
        onResumed: () => void calls.push('resumed'),
      };
      const first = runtimeOn(database(), { drivers: [driver] });
      const held = await first.spawn({ name: 'held', start: false, driver: 'rec' });
      expect(held.snapshot.context.held).toBe(true);
      await crash(first);

      const second = runtimeOn(database(), { drivers: [driver] });
      expect(await second.restoreAll()).toMatchObject({ total: 1, restored: 1, failed: [] });
      const restored = second.get(held.id);
      expect(restored?.state).toBe('initializing');
      expect(restored?.snapshot.context).toMatchObject({ held: true, restorationCount: 1 });
      expect(await getSupervisorState(db(), held.id)).toMatchObject({ state: 'initializing', restorationCount: 1 });
      await crash(second);

      // A takeover by a third daemon holds it too.
      const third = runtimeOn(database(), { drivers: [driver] });
      const info = await third.restore(held.id, 'reassignment');
      expect(info).toMatchObject({ restoredState: 'initializing', restorationCount: 2 });
      // Callbacks run after the restore is committed, a turn later: give them that turn.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(calls).toEqual([]);
      const startedEntry = 'Supervisor "held" started in phase planning.';
      expect((await getConversation(db(), held.id)).filter((entry) => entry.content === startedEntry)).toEqual([]);

      await third.send(held.id, { type: 'START' });
      expect(third.get(held.id)?.state).toBe('idle');
      expect(third.get(held.id)?.snapshot.context.held).toBe(false);
      await expect.poll(() => calls).toEqual(['started']);
      await crash(third);
      // Begun: from here a restore treats it as any other.
      const fourth = runtimeOn(database(), { drivers: [driver] });
      expect((await fourth.restoreAll()).results[0]).toMatchObject({ restoredState: 'idle', restorationCount: 3 });
      await expect.poll(() => calls).toEqual(['started', 'restored']);
      expect((await getConversation(db(), held.id)).filter((entry) => entry.content === startedEntry)).toHaveLength(1);
      await fourth.shutdown({ closeDatabase: false });
    });

    it('a held supervisor an operator interrupted stays interrupted across a restart; RESUME brings it back to initializing, still held, and START begins it', async () => {
      const first = runtimeOn(database());
      const held = await first.spawn({ name: 'held and paused', start: false });
      await first.send(held.id, { type: 'INTERRUPT', reason: 'not yet' });
      await crash(first);
      const second = runtimeOn(database());
      expect((await second.restoreAll()).results[0]).toMatchObject({ restoredState: 'interrupted', restorationCount: 1 });
      await second.send(held.id, { type: 'RESUME' });
      expect(second.get(held.id)?.state).toBe('initializing');
      expect(second.get(held.id)?.snapshot.context.held).toBe(true);
      await crash(second);
      const third = runtimeOn(database());
      expect((await third.restoreAll()).results[0]).toMatchObject({ restoredState: 'initializing', restorationCount: 2 });
      await third.send(held.id, { type: 'START' });
      expect(third.get(held.id)?.state).toBe('idle');
      await third.shutdown({ closeDatabase: false });
    });

    it('a spawn whose creation committed but whose START did not (no hold in its snapshot, as in snapshots from before holds) is started by the restore, once', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'crashed before start', start: false });
      await crash(first);
      // What a spawn to start left when the daemon died between its creation save point and its START.
      await unhold(supervisor.id).execute(db());
      const second = runtimeOn(database());
      expect((await second.restoreAll()).results[0]).toMatchObject({ restoredState: 'idle', restorationCount: 1 });
      const started = (await getConversation(db(), supervisor.id)).filter((entry) => entry.content === 'Supervisor "crashed before start" started in phase planning.');
      expect(started).toHaveLength(1);
      await second.shutdown({ closeDatabase: false });
    });

    it('a supervisor that cannot be restored is marked interrupted with the reason, the others come back, and it resumes once the cause is gone', async () => {
      const first = runtimeOn(database());
      const good = await first.spawn({ name: 'good' });
      const bad = await first.spawn({ name: 'bad' });
      // One that never started: interrupted from initializing, it must still start once resumed. Spawned to start, its
      // START never committed (the creation snapshot has no hold, as one made before holds were recorded).
      const unstarted = await first.spawn({ name: 'unstarted', start: false });
      await crash(first);
      await unhold(unstarted.id).execute(db());
      // The database refuses the bad supervisors' restoration save points (an injected failure, as a broken disk would).
      await sql`CREATE FUNCTION refuse_restoration() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.reason = 'restored' AND NEW.supervisor_id IN (${sql.lit(bad.id)}::uuid, ${sql.lit(unstarted.id)}::uuid) THEN RAISE EXCEPTION 'injected: checkpoint storage failed'; END IF;
          RETURN NEW;
        END $$`.execute(db());
      await sql`CREATE TRIGGER refuse_restoration BEFORE INSERT ON supervisor_checkpoints FOR EACH ROW EXECUTE FUNCTION refuse_restoration()`.execute(db());
      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary.restored).toBe(1);
      expect(summary.failed.map((failure) => failure.supervisorId).sort()).toEqual([bad.id, unstarted.id].sort());
      expect(summary.failed[0]?.error).toMatch(/injected: checkpoint storage failed/);
      expect(second.get(good.id)?.state).toBe('idle');
      expect(second.get(bad.id)).toBeUndefined();
      const row = await getSupervisorState(db(), bad.id);
      // Interrupted through the machine and the normal fenced save path: row, snapshot and checkpoint agree.
      expect(row?.state).toBe('interrupted');
      expect(row?.errorMessage).toMatch(/^restore failed: .*injected/);
      expect(row?.owner).toBe(second.daemonId);
      expect((await listCheckpoints(db(), bad.id, { limit: 1 }))[0]).toMatchObject({ reason: 'interrupted', state: 'interrupted' });
      const stored = await sql<{ value: string }>`SELECT c.snapshot ->> 'value' AS value FROM supervisor_states s JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq WHERE s.id = ${bad.id}`.execute(db());
      expect(stored.rows[0]?.value).toBe('interrupted');

      // The cause goes away: the next restore uses the row as it is (no checkpoint walk) and resumes the supervisor.
      await sql`DROP TRIGGER refuse_restoration ON supervisor_checkpoints`.execute(db());
      const info = await second.restore(bad.id, 'manual');
      expect(info.validation.valid).toBe(true);
      expect(info.recoveryAction).toBe('restore');
      expect(info.restoredState).toBe('idle');
      expect((await getSupervisorState(db(), bad.id))?.errorMessage).toBeNull();
      expect((await getSupervisorState(db(), unstarted.id))?.state).toBe('interrupted');
      const resumed = await second.restore(unstarted.id, 'manual');
      expect(resumed.restoredState).toBe('idle');
      expect(second.get(unstarted.id)?.state).toBe('idle');
      await second.shutdown({ closeDatabase: false });
    });

    it('a row that can no longer be written (step at the bigint limit) is reported failed and left as stored for a person, not retried in a loop', async () => {
      const first = runtimeOn(database());
      const stuck = await first.spawn({ name: 'stuck' });
      await crash(first);
      await sql`UPDATE supervisor_states SET step = 9223372036854775807 WHERE id = ${stuck.id}`.execute(db());
      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary.failed.map((failure) => failure.supervisorId)).toEqual([stuck.id]);
      expect(second.get(stuck.id)).toBeUndefined();
      // Nothing could be written; this daemon keeps it (so no claim round picks it up again) until someone resumes it.
      expect(await getSupervisorState(db(), stuck.id)).toMatchObject({ state: 'idle', owner: second.daemonId, step: 9223372036854775807 });
      await second.shutdown({ closeDatabase: false });
    });

    it('the restoration actor is sent to the inspector with its steps', async () => {
      const first = runtimeOn(database());
      const supervisor = await first.spawn({ name: 'inspected' });
      await crash(first);
      const events: InspectionEvent[] = [];
      const second = runtimeOn(database(), { inspect: { next: (event: InspectionEvent) => events.push(event) } });
      await second.restore(supervisor.id, 'manual');
      const restorationSnapshots = events.filter((event) => event.type === '@xstate.snapshot' && (event.actorRef as { id?: string }).id === `restoration:${supervisor.id}`);
      const values = restorationSnapshots.map((event) => (event as { snapshot: { value?: unknown } }).snapshot.value);
      expect(values).toEqual(expect.arrayContaining(['validating', 'restoringConversation', 'reconcilingTasks', 'markingRestored', 'restored']));
      await second.shutdown({ closeDatabase: false });
    });
  });
}
