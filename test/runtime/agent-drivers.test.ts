// Agent drivers react to committed facts only: a recording driver proves the database already holds what it is told,
// and the scripted driver (the runtime's stand-in for an LLM) runs a supervisor from start to completion.

import { describe, expect, it, vi } from 'vitest';
import { getConversation, getSupervisorState, getTask, listCheckpoints } from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { checkpointReasons, expectStoredEqualsLive, observeCommits, useRuntimes, type CommittedStatement } from './runtime-fixtures.js';

for (const target of await databaseTargets()) {
  describe(`agent drivers on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;
    const startRuntime = useRuntimes(database);

    it('an agent driver hears only committed facts: at each callback the database already holds what it is told', async () => {
      const commits: CommittedStatement[] = [];
      const observed = observeCommits(database(), (statement) => commits.push(statement));
      const committedWith = (reason: string) => commits.filter((statement) => statement.reasons.includes(reason)).length;
      const heard: Array<Record<string, unknown>> = [];
      const reads: Array<Promise<void>> = [];
      // Each callback notes synchronously how many save points with the matching reason had committed, and starts a
      // read of the database at the moment it is called.
      const read = (note: Record<string, unknown>, query: () => Promise<Record<string, unknown>>) => {
        reads.push(query().then((stored) => void heard.push({ ...note, ...stored })));
      };
      const recorder: AgentDriver = {
        name: 'recorder',
        onStarted(handle) {
          read({ callback: 'onStarted', committed: committedWith('started') }, async () => ({
            state: (await getSupervisorState(db(), handle.id))?.state,
            reasons: await checkpointReasons(db(), handle.id),
          }));
        },
        onQuestionAnswered(handle, answer) {
          read({ callback: 'onQuestionAnswered', questionId: answer.questionId, committed: committedWith('question_answered') }, async () => ({
            pending: (await getSupervisorState(db(), handle.id))?.pendingQuestions.map((q) => q.id),
            lastEntry: (await getConversation(db(), handle.id)).at(-1)?.content,
          }));
        },
        onTaskFinished(_handle, task) {
          read({ callback: 'onTaskFinished', taskId: task.taskId, committed: committedWith(`task_${task.status}`) }, async () => ({
            status: (await getTask(db(), task.taskId))?.status,
          }));
        },
      };
      const runtime = startRuntime({ database: observed, drivers: [recorder] });
      // Each read finishes before the next event is sent, so it shows the database as it was when the driver was called.
      const heardSoFar = async (count: number) => {
        await vi.waitFor(() => expect(reads).toHaveLength(count));
        await Promise.all(reads);
      };
      const supervisor = await runtime.spawn({ name: 'driven', driver: 'recorder' });
      await heardSoFar(1);
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'write the draft' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Formal?' });
      await runtime.answerQuestion(supervisor.id, questionId, 'no');
      await heardSoFar(2);
      await runtime.reportTaskEvent(taskId, { type: 'failed', error: 'out of tokens' });
      await heardSoFar(3);

      expect(heard).toEqual([
        { callback: 'onStarted', committed: 1, state: 'idle', reasons: ['created', 'started'] },
        { callback: 'onQuestionAnswered', questionId, committed: 1, pending: [], lastEntry: 'no' },
        { callback: 'onTaskFinished', taskId, committed: 1, status: 'failed' },
      ]);
    });

    it('onResumed hears a RESUME event once, with what was taken in while interrupted; a restoration or a fork that resumes tells onRestored or onForked instead', async () => {
      const heard: Array<Record<string, unknown>> = [];
      const recorder: AgentDriver = {
        name: 'recorder',
        async onResumed(handle, resume) {
          // Told after the RESUME committed: the row is running again.
          const stored = await getSupervisorState(db(), handle.id);
          heard.push({ callback: 'onResumed', id: handle.id, storedState: stored?.state, ...resume, arrived: resume.arrived.map(({ role, content }) => ({ role, content })) });
        },
        onRestored: (handle) => void heard.push({ callback: 'onRestored', id: handle.id, state: handle.state() }),
        onForked: (handle) => void heard.push({ callback: 'onForked', id: handle.id, state: handle.state() }),
      };
      const quiet = () => new Promise((resolve) => setTimeout(resolve, 200));
      const first = startRuntime({ drivers: [recorder] });
      const supervisor = await first.spawn({ name: 'driven', driver: 'recorder' });
      const { taskId } = await first.spawnTask(supervisor.id, { description: 'build' });
      const { questionId } = await first.askQuestion(supervisor.id, { question: 'Ship it?' });
      await first.send(supervisor.id, { type: 'INTERRUPT', reason: 'maintenance' });
      await first.reportTaskEvent(taskId, { type: 'completed', result: 'built' });
      await first.answerQuestion(supervisor.id, questionId, 'yes');
      await quiet();
      expect(heard).toEqual([]);

      await first.send(supervisor.id, { type: 'RESUME' });
      await vi.waitFor(() => expect(heard).toHaveLength(1));
      expect(heard[0]).toEqual({
        callback: 'onResumed',
        id: supervisor.id,
        storedState: 'working',
        interruptedFrom: 'waiting_for_user',
        reason: 'maintenance',
        arrived: [
          { role: 'tool', content: `Task ${taskId} completed: built` },
          { role: 'user', content: 'yes' },
        ],
      });

      // Nothing arrived this time: told, with nothing in it.
      await first.send(supervisor.id, { type: 'INTERRUPT', reason: 'maintenance' });
      await first.send(supervisor.id, { type: 'RESUME' });
      await vi.waitFor(() => expect(heard).toHaveLength(2));
      expect(heard[1]).toMatchObject({ callback: 'onResumed', interruptedFrom: 'working', arrived: [] });

      // Interrupted when its daemon stops: the restoration resumes it and says so through onRestored alone.
      await first.send(supervisor.id, { type: 'INTERRUPT', reason: 'maintenance' });
      await first.shutdown({ closeDatabase: false });
      const second = startRuntime({ drivers: [recorder] });
      expect(await second.restoreAll()).toMatchObject({ restored: 1, failed: [] });
      await vi.waitFor(() => expect(heard).toHaveLength(3));
      expect(heard[2]).toEqual({ callback: 'onRestored', id: supervisor.id, state: 'working' });

      // A fork of the interrupted checkpoint is resumed as it is made: onForked alone.
      const interruptedAt = (await listCheckpoints(db(), supervisor.id, { limit: 1000 })).find((checkpoint) => checkpoint.state === 'interrupted');
      const { supervisor: fork } = await second.fork(supervisor.id, { checkpointSeq: interruptedAt?.seq ?? -1 });
      await vi.waitFor(() => expect(heard).toHaveLength(4));
      expect(heard[3]).toEqual({ callback: 'onForked', id: fork.id, state: 'working' });
      await quiet();
      expect(heard).toHaveLength(4);
    });

    it('a scripted supervisor waits for its human with two running tasks, then completes once answered and both tasks are done', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'scripted', driver: 'scripted' });

      await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1));
      expect(supervisor.state).toBe('waiting_for_user');
      expect(supervisor.snapshot.context.phase).toBe('execution');
      const tasks = supervisor.snapshot.context.tasks;
      expect(tasks.map((task) => [task.description, task.status])).toEqual([
        ['collect the requirements', 'running'],
        ['draft the implementation plan', 'running'],
      ]);
      const [question] = supervisor.snapshot.context.pendingQuestions;
      expect(question).toMatchObject({ question: 'Which approach should the plan take?', choices: ['incremental', 'rewrite'] });
      await expectStoredEqualsLive(db(), supervisor);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'waiting_for_user', driver: 'scripted' });

      await runtime.answerQuestion(supervisor.id, question?.id ?? '', 'incremental');
      expect(supervisor.state).toBe('waiting_for_tasks');
      await runtime.reportTaskEvent(tasks[0]?.id ?? '', { type: 'completed', result: 'requirements collected' });
      await runtime.reportTaskEvent(tasks[1]?.id ?? '', { type: 'completed', result: 'plan drafted' });

      await vi.waitFor(() => expect(supervisor.state).toBe('completed'));
      await supervisor.flush();
      expect(supervisor.snapshot.context.phase).toBe('review');
      await expectStoredEqualsLive(db(), supervisor);
      expect(await checkpointReasons(db(), supervisor.id)).toEqual([
        'created',
        'started',
        'idle_to_working',
        'phase_changed',
        'task_spawned',
        'task_spawned',
        'question_asked',
        'question_answered',
        'task_completed',
        'task_completed',
        'phase_changed',
        'completed',
      ]);
    });
  });
}
