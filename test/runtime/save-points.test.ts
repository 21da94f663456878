// Every save point leaves the stored row equal to the live supervisor, appends exactly one checkpoint when it is a
// full save, and none when it is a heartbeat; a refused event writes nothing at all.

import { describe, expect, it, vi } from 'vitest';
import { EventRefusedError } from '../../src/domain/errors.js';
import { getSupervisorState, listCheckpoints } from '../../src/persistence/supervisor-repository.js';
import type { SupervisorCommand } from '../../src/runtime/agent-driver.js';
import type { DurableSupervisor } from '../../src/runtime/durable-supervisor.js';
import type { SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { checkpointReasons, countRows, expectStoredEqualsLive, storedFootprint, useRuntimes } from './runtime-fixtures.js';

for (const target of await databaseTargets()) {
  describe(`save points on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;
    const startRuntime = useRuntimes(database);

    it('after every save point the stored row and snapshot equal the actor, and each full save appends one checkpoint with its reason', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'docs writer' });
      await expectStoredEqualsLive(db(), supervisor);
      expect(await checkpointReasons(db(), supervisor.id)).toEqual(['created', 'started']);

      const drive: Array<[SupervisorCommand, string, string]> = [
        [{ type: 'SET_ACTIVITY', activity: 'reading the issue', progress: 10 }, 'idle_to_working', 'working'],
        [{ type: 'SPAWN_TASK', taskId: 'task-index', description: 'index the repository' }, 'task_spawned', 'waiting_for_tasks'],
        [{ type: 'SPAWN_TASK', taskId: 'task-tests', description: 'run the test suite' }, 'task_spawned', 'waiting_for_tasks'],
        [{ type: 'ASK_QUESTION', questionId: 'q-tone', question: 'Which tone?', choices: ['formal', 'casual'] }, 'question_asked', 'waiting_for_user'],
        [{ type: 'ASK_QUESTION', questionId: 'q-audience', question: 'Who reads it?' }, 'question_asked', 'waiting_for_user'],
        [{ type: 'ANSWER', questionId: 'q-tone', answer: 'casual' }, 'question_answered', 'waiting_for_user'],
        [{ type: 'TASK_EVENT', taskId: 'task-index', kind: 'progress', progress: 40 }, 'task_progress', 'waiting_for_user'],
        [{ type: 'TASK_EVENT', taskId: 'task-index', kind: 'completed', result: '120 files' }, 'task_completed', 'waiting_for_user'],
        [{ type: 'TASK_EVENT', taskId: 'task-tests', kind: 'completed', result: 'all green' }, 'task_completed', 'waiting_for_user'],
        [{ type: 'SET_PHASE', phase: 'review' }, 'phase_changed', 'waiting_for_user'],
        [{ type: 'ANSWER', questionId: 'q-audience', answer: 'new contributors' }, 'question_answered', 'working'],
        [{ type: 'COMPLETE', summary: 'docs written' }, 'completed', 'completed'],
      ];
      const reasons = ['created', 'started'];
      for (const [command, reason, state] of drive) {
        const stepBefore = supervisor.step;
        const committed = await runtime.send(supervisor.id, command);
        reasons.push(reason);
        await expectStoredEqualsLive(db(), supervisor);
        expect({ event: command.type, kind: committed.kind, reason: committed.reason, state: supervisor.state }).toEqual({ event: command.type, kind: 'full', reason, state });
        expect(supervisor.step).toBe(stepBefore + 1);
        // Exactly one new checkpoint, at this step, holding this snapshot.
        expect(await checkpointReasons(db(), supervisor.id)).toEqual(reasons);
        const [newest] = await listCheckpoints(db(), supervisor.id, { limit: 1 });
        expect(newest).toMatchObject({ seq: committed.checkpointSeq, step: supervisor.step, reason, state });
        // The row points at the checkpoint that holds its snapshot (written once, not copied onto the row).
        expect((await getSupervisorState(db(), supervisor.id))?.checkpointSeq).toBe(committed.checkpointSeq);
      }
      // Both tasks finished: they left the snapshot, and their rows hold the outcome.
      expect(supervisor.snapshot.context).toMatchObject({ tasks: [], completedTaskCount: 2 });
      expect((await runtime.tasks(supervisor.id)).map((task) => [task.id, task.status, task.progress])).toEqual([
        ['task-index', 'completed', 100],
        ['task-tests', 'completed', 100],
      ]);
      // The conversation was appended entry by entry, in the order the machine counted it.
      const conversation = await db().selectFrom('supervisor_conversation').select('seq').where('supervisor_id', '=', supervisor.id).orderBy('seq').execute();
      expect(conversation.map((entry) => entry.seq)).toEqual([...Array(supervisor.snapshot.context.conversationLength).keys()]);
    });

    it('a running task\'s progress reaches its row in the same save point, so the task list shows it before the task finishes', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'progress' });
      await runtime.spawnTask(supervisor.id, { description: 'long job', taskId: 'long-job' });
      await runtime.spawnTask(supervisor.id, { description: 'other job', taskId: 'other-job' });
      await runtime.reportTaskEvent('long-job', { type: 'progress', progress: 40 });
      expect((await runtime.tasks(supervisor.id)).map((task) => [task.id, task.status, task.progress])).toEqual([
        ['long-job', 'running', 40],
        ['other-job', 'running', 0],
      ]);
      await runtime.reportTaskEvent('long-job', { type: 'progress', progress: 75 });
      expect((await runtime.tasks(supervisor.id)).find((task) => task.id === 'long-job')?.progress).toBe(75);
      await expectStoredEqualsLive(db(), supervisor);
    });

    it('a HEARTBEAT event updates last_heartbeat, activity and progress but appends no checkpoint and keeps the step', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'heartbeat' });
      await runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'thinking' });
      const checkpoints = await countRows(db(), 'supervisor_checkpoints', supervisor.id);
      const step = supervisor.step;

      const at = '2026-03-01T12:00:00.000Z';
      const committed = await runtime.send(supervisor.id, { type: 'HEARTBEAT', at, activity: 'writing', progress: 35 });

      expect(committed).toMatchObject({ kind: 'heartbeat', reason: 'heartbeat', checkpointSeq: null });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ lastHeartbeat: at, currentActivity: 'writing', progress: 35, step, state: 'working' });
      expect(supervisor.snapshot.context).toMatchObject({ lastHeartbeatAt: at, currentActivity: 'writing', progress: 35 });
      expect(await countRows(db(), 'supervisor_checkpoints', supervisor.id)).toBe(checkpoints);
      expect(supervisor.step).toBe(step);
    });

    it('the heartbeat timer beats every heartbeatIntervalMs without appending checkpoints', async () => {
      const runtime = startRuntime({ heartbeatIntervalMs: 50 });
      const spawnedAt = Date.now();
      const supervisor = await runtime.spawn({ name: 'beating' });
      const checkpoints = await countRows(db(), 'supervisor_checkpoints', supervisor.id);
      const seen = new Set<string>();
      await vi.waitFor(
        async () => {
          const beat = (await getSupervisorState(db(), supervisor.id))?.lastHeartbeat;
          if (beat) seen.add(beat);
          expect(seen.size).toBeGreaterThanOrEqual(3);
        },
        { timeout: 5_000, interval: 20 },
      );
      await runtime.stop(supervisor.id);
      const row = await getSupervisorState(db(), supervisor.id);
      expect(Date.parse(row?.lastHeartbeat ?? '')).toBeGreaterThanOrEqual(spawnedAt - 5);
      expect(row?.lastHeartbeat).toBe(supervisor.snapshot.context.lastHeartbeatAt);
      expect(await countRows(db(), 'supervisor_checkpoints', supervisor.id)).toBe(checkpoints);
      expect(row?.step).toBe(2);
    });

    describe('refused events', () => {
      async function expectRefusedWithoutWrites(
        runtime: SupervisorRuntime,
        supervisor: DurableSupervisor,
        refuse: () => Promise<unknown>,
        expected: { eventType: string; reason: RegExp },
      ): Promise<void> {
        const before = await storedFootprint(db(), supervisor.id);
        const snapshot = supervisor.snapshot;
        const step = supervisor.step;
        const error = await refuse().then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(EventRefusedError);
        expect(error).toMatchObject({ supervisorId: supervisor.id, eventType: expected.eventType, state: snapshot.value });
        expect((error as EventRefusedError).reason).toMatch(expected.reason);
        expect((error as Error).message).toContain(supervisor.id);
        expect(await storedFootprint(db(), supervisor.id)).toEqual(before);
        expect(supervisor.snapshot).toBe(snapshot);
        expect(supervisor.step).toBe(step);
        expect(runtime.registry.getSnapshot().context.supervisors[supervisor.id]?.state).toBe(snapshot.value);
        await expectStoredEqualsLive(db(), supervisor);
      }

      it('an answer to a question that was never asked is refused and writes nothing', async () => {
        const runtime = startRuntime();
        const supervisor = await runtime.spawn({ name: 'refuser' });
        await runtime.askQuestion(supervisor.id, { question: 'Which tone?', questionId: 'q-tone' });
        await expectRefusedWithoutWrites(runtime, supervisor, () => runtime.send(supervisor.id, { type: 'ANSWER', questionId: 'q-unknown', answer: 'yes' }), {
          eventType: 'ANSWER',
          reason: /question q-unknown is not pending \(never asked, or already answered\)/,
        });
      });

      it('a task progress of 140 is refused and writes nothing', async () => {
        const runtime = startRuntime();
        const supervisor = await runtime.spawn({ name: 'refuser' });
        const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'long job' });
        await runtime.reportTaskEvent(taskId, { type: 'progress', progress: 30 });
        await expectRefusedWithoutWrites(runtime, supervisor, () => runtime.reportTaskEvent(taskId, { type: 'progress', progress: 140 }), {
          eventType: 'TASK_EVENT',
          reason: /progress 140 is outside 0–100/,
        });
        await expectRefusedWithoutWrites(runtime, supervisor, () => runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'x', progress: 140 }), {
          eventType: 'SET_ACTIVITY',
          reason: /progress 140 is outside 0–100/,
        });
      });

      it('every event after completed is refused and writes nothing', async () => {
        const runtime = startRuntime();
        const supervisor = await runtime.spawn({ name: 'finisher' });
        await runtime.send(supervisor.id, { type: 'COMPLETE', summary: 'nothing to do' });
        expect(supervisor.state).toBe('completed');
        const afterCompletion: SupervisorCommand[] = [
          { type: 'SET_PHASE', phase: 'again' },
          { type: 'SET_ACTIVITY', activity: 'zombie work' },
          { type: 'ASK_QUESTION', question: 'Anyone there?' },
          { type: 'SPAWN_TASK', description: 'late task' },
          { type: 'HEARTBEAT' },
          { type: 'COMPLETE' },
        ];
        for (const command of afterCompletion) {
          await expectRefusedWithoutWrites(runtime, supervisor, () => runtime.send(supervisor.id, command), {
            eventType: command.type,
            reason: /supervisor is completed and accepts no more events/,
          });
        }
      });

      it('a refused event in the middle of a queue leaves the events around it applied in order', async () => {
        const runtime = startRuntime();
        const supervisor = await runtime.spawn({ name: 'queue' });
        const results = await Promise.allSettled([
          runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'design' }),
          runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'design' }),
          runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'build' }),
        ]);
        expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ reason: 'phase is already design' });
        expect(supervisor.snapshot.context.phase).toBe('build');
        expect(supervisor.step).toBe(4);
        await expectStoredEqualsLive(db(), supervisor);
      });
    });
  });
}
