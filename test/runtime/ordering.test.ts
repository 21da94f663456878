// Steps of one supervisor apply one at a time in the order they were sent; many supervisors run side by side.

import { describe, expect, it } from 'vitest';
import { getConversation, listCheckpoints, listQuestions } from '../../src/persistence/supervisor-repository.js';
import type { SupervisorCommand } from '../../src/runtime/agent-driver.js';
import type { DurableSupervisor } from '../../src/runtime/durable-supervisor.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { checkpointReasons, expectStoredEqualsLive, useRuntimes } from './runtime-fixtures.js';

/** Runs `work` for every item with at most `limit` in flight. */
async function withConcurrency<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

for (const target of await databaseTargets()) {
  describe(`ordering on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;
    const startRuntime = useRuntimes(database);

    it('50 events sent at once to one supervisor are applied in the order sent, each at the next step', async () => {
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'busy' });
      // Each answer is only valid after its question: applied out of order, the answer would be refused.
      const commands: SupervisorCommand[] = Array.from({ length: 50 }, (_, i): SupervisorCommand => {
        const pair = Math.floor(i / 2);
        return i % 2 === 0 ? { type: 'ASK_QUESTION', questionId: `q${pair}`, question: `question ${pair}?` } : { type: 'ANSWER', questionId: `q${pair}`, answer: `answer ${pair}` };
      });

      const committed = await Promise.all(commands.map((command) => runtime.send(supervisor.id, command)));

      const seqs = committed.map((step) => step.checkpointSeq ?? 0);
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => 3 + i));
      expect(committed.map((step) => step.event?.type)).toEqual(commands.map((command) => command.type));
      const checkpoints = (await listCheckpoints(db(), supervisor.id, { limit: 100 })).reverse();
      expect(checkpoints.map((checkpoint) => checkpoint.step)).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));
      expect((await checkpointReasons(db(), supervisor.id)).slice(2)).toEqual(commands.map((command) => (command.type === 'ASK_QUESTION' ? 'question_asked' : 'question_answered')));
      expect(supervisor.step).toBe(52);
      const conversation = await getConversation(db(), supervisor.id);
      expect(conversation.slice(1).map((entry) => entry.content)).toEqual(
        commands.map((command) => (command.type === 'ASK_QUESTION' ? command.question : command.type === 'ANSWER' ? command.answer : '')),
      );
      expect(supervisor.snapshot.context.answeredQuestionCount).toBe(25);
      const answered = await listQuestions(db(), supervisor.id, { answered: true });
      expect(answered.map((question) => question.id).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `q${i}`).sort());
      await expectStoredEqualsLive(db(), supervisor);
    });

    it('200 supervisors driven concurrently all end with rows equal to their actors', async () => {
      const runtime = startRuntime();
      const supervisors: DurableSupervisor[] = [];
      await withConcurrency(Array.from({ length: 200 }, (_, i) => i), 25, async (i) => {
        const supervisor = await runtime.spawn({ name: `worker ${i}` });
        supervisors.push(supervisor);
        await runtime.send(supervisor.id, { type: 'SET_ACTIVITY', activity: `activity ${i}`, progress: i % 100 });
        const { taskId } = await runtime.spawnTask(supervisor.id, { description: `task of ${i}` });
        const { questionId } = await runtime.askQuestion(supervisor.id, { question: `question of ${i}?` });
        // The last events of each supervisor go out together, without waiting for one another.
        await Promise.all([
          runtime.answerQuestion(supervisor.id, questionId, `answer ${i}`),
          runtime.reportTaskEvent(taskId, { type: 'completed', result: `result ${i}` }),
          runtime.send(supervisor.id, { type: 'SET_PHASE', phase: `phase ${i}` }),
        ]);
      });

      expect(supervisors).toHaveLength(200);
      expect(new Set(supervisors.map((supervisor) => supervisor.state))).toEqual(new Set(['working']));
      await withConcurrency(supervisors, 8, (supervisor) => expectStoredEqualsLive(db(), supervisor));
      const total = await db().selectFrom('supervisor_checkpoints').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirst();
      // created, started, working, task_spawned, question_asked, question_answered, task_completed, phase_changed
      expect(Number(total?.n)).toBe(200 * 8);
    });
  });
}
