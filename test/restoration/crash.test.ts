// kill -9 a real daemon in the middle of its work, start it again, and check that every supervisor carries on.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestorationInfo } from '../../src/domain/restoration.js';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, daemonRequest, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';

interface View {
  id: string;
  name: string;
  state: string;
  phase: string;
  currentActivity: string | null;
  progress: number;
  spawnedTaskIds: string[];
  pendingQuestions: Array<{ id: string; question: string; deliveryCount: number; lastDeliveredAt: string }>;
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
}

const call = daemonRequest;

const event = (daemon: DaemonProcess, id: string, body: Record<string, unknown>) => call<View>(daemon, 'POST', `/supervisors/${id}/events`, body);

for (const target of await databaseTargets()) {
  describe(`kill -9 and restart on ${target.name}`, () => {
    let database: DaemonDatabase;
    beforeAll(async () => {
      database = await createDaemonDatabase(target, 'sr_crash');
    });
    afterAll(async () => {
      await database.cleanup();
    });

    it('every supervisor comes back with its state, conversation, tasks and open questions, then finishes', { timeout: 120_000 }, async () => {
      const first = await startDaemonProcess({ env: database.env });
      const spawn = (name: string) => call<View>(first, 'POST', '/supervisors', { name });

      // working, with two running tasks
      const working = await spawn('working-with-tasks');
      await event(first, working.id, { type: 'SET_ACTIVITY', activity: 'splitting the work', progress: 10 });
      const workingTasks = [
        (await call<{ taskId: string }>(first, 'POST', `/supervisors/${working.id}/tasks`, { description: 'lint' })).taskId,
        (await call<{ taskId: string }>(first, 'POST', `/supervisors/${working.id}/tasks`, { description: 'build' })).taskId,
      ];
      await event(first, working.id, { type: 'SET_ACTIVITY', activity: 'reviewing while tasks run', progress: 40 });

      // waiting_for_user, with two questions
      const asking = await spawn('two-questions');
      const questions = [
        (await call<{ questionId: string }>(first, 'POST', `/supervisors/${asking.id}/questions`, { question: 'Deploy now?', choices: ['yes', 'no'] })).questionId,
        (await call<{ questionId: string }>(first, 'POST', `/supervisors/${asking.id}/questions`, { question: 'Who reviews?' })).questionId,
      ];

      // waiting_for_tasks
      const waiting = await spawn('waiting-for-tasks');
      const waitingTask = (await call<{ taskId: string }>(first, 'POST', `/supervisors/${waiting.id}/tasks`, { description: 'migrate data' })).taskId;

      // mid phase change: one committed; the next one is sent and the daemon is killed at once, while it is in flight
      const phasing = await spawn('mid-phase-change');
      await event(first, phasing.id, { type: 'SET_PHASE', phase: 'build' });

      const ids = [working.id, asking.id, waiting.id, phasing.id];
      const before = new Map<string, View>();
      for (const id of [working.id, asking.id, waiting.id]) before.set(id, await call<View>(first, 'GET', `/supervisors/${id}`));
      const conversationsBefore = new Map<string, number>();
      for (const id of ids) conversationsBefore.set(id, (await call<{ entries: unknown[] }>(first, 'GET', `/supervisors/${id}/conversation`)).entries.length);

      const inFlight = event(first, phasing.id, { type: 'SET_PHASE', phase: 'release' }).then(
        () => 'committed' as const,
        () => 'lost' as const,
      );
      const killed = await first.stop('SIGKILL');
      expect(killed.code).toBeNull();
      const phaseOutcome = await inFlight;

      const second = await startDaemonProcess({ env: database.env });
      try {
        const restorations = await call<{ total: number; restored: number; failed: unknown[]; results: RestorationInfo[] }>(second, 'GET', '/restorations');
        expect(restorations).toMatchObject({ total: 4, restored: 4, failed: [] });
        const info = new Map(restorations.results.map((result) => [result.supervisorId, result]));
        for (const id of ids) {
          expect(info.get(id)).toMatchObject({ source: 'daemon_restart', recoveryAction: 'restore', restorationCount: 1 });
          const after = await call<View>(second, 'GET', `/supervisors/${id}`);
          expect(after.restorationCount).toBe(1);
          expect(after.restorationSource).toBe('daemon_restart');
          expect(Date.parse(after.lastRestoredAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
          const previous = before.get(id);
          if (previous) {
            expect(after).toMatchObject({
              state: previous.state,
              phase: previous.phase,
              currentActivity: previous.currentActivity,
              progress: previous.progress,
              spawnedTaskIds: previous.spawnedTaskIds,
            });
            expect(after.pendingQuestions.map((q) => [q.id, q.deliveryCount])).toEqual(previous.pendingQuestions.map((q) => [q.id, q.deliveryCount + 1]));
          }
          // The conversation is all there, followed by exactly one restoration context message.
          const conversation = (await call<{ entries: Array<{ seq: number; role: string; content: string }> }>(second, 'GET', `/supervisors/${id}/conversation`)).entries;
          const last = conversation.at(-1);
          expect(last?.role).toBe('system');
          expect(last?.content).toBe(info.get(id)?.contextMessage);
          if (id !== phasing.id) expect(conversation).toHaveLength((conversationsBefore.get(id) ?? 0) + 1);
          expect(conversation.map((entry) => entry.seq)).toEqual(conversation.map((_, index) => index));
        }

        expect(info.get(working.id)).toMatchObject({ restoredState: 'working', tasksResumed: workingTasks });
        expect(info.get(asking.id)).toMatchObject({ restoredState: 'waiting_for_user' });
        expect(info.get(asking.id)?.questionsRedelivered.map((q) => [q.id, q.deliveryCount])).toEqual(questions.map((id) => [id, 2]));
        expect(info.get(asking.id)?.contextMessage).toMatch(/Deploy now\?[\s\S]*Who reviews\?/);
        expect(info.get(waiting.id)).toMatchObject({ restoredState: 'waiting_for_tasks', tasksResumed: [waitingTask] });
        const phase = (await call<View>(second, 'GET', `/supervisors/${phasing.id}`)).phase;
        // A phase change the caller saw commit is never lost; one still in flight is either wholly there or wholly absent.
        expect(phaseOutcome === 'committed' ? ['release'] : ['build', 'release']).toContain(phase);
        expect(info.get(phasing.id)?.restoredPhase).toBe(phase);

        // Carry on: answer, finish the tasks, complete.
        await call(second, 'POST', `/supervisors/${asking.id}/questions/${questions[0]}/answer`, { answer: 'yes' });
        await call(second, 'POST', `/supervisors/${asking.id}/questions/${questions[1]}/answer`, { answer: 'Ada' });
        for (const taskId of [...workingTasks, waitingTask]) await call(second, 'POST', `/tasks/${taskId}/events`, { type: 'completed', result: 'done' });
        for (const id of ids) expect((await event(second, id, { type: 'COMPLETE' })).state).toBe('completed');
      } finally {
        await second.stop('SIGTERM');
      }
    });
  });
}
