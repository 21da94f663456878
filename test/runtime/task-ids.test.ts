import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { EventRefusedError, InvalidSupervisorDataError } from '../../src/domain/errors.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`caller-chosen task ids on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it("a task id that belongs to another supervisor's task is refused, naming that supervisor, and nothing is written", async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const a = await runtime.spawn({ name: 'a' });
        const b = await runtime.spawn({ name: 'b' });
        await runtime.spawnTask(a.id, { description: 'mine', taskId: 'build-42' });
        const error = await runtime.spawnTask(b.id, { description: 'stolen', taskId: 'build-42' }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EventRefusedError);
        expect((error as EventRefusedError).reason).toBe(`task id build-42 is already used by supervisor ${a.id}`);
        expect(b.snapshot.context.tasks).toEqual([]);
        const outbox = await sql<{ n: string | number }>`SELECT count(*) AS n FROM supervisor_outbox WHERE supervisor_id = ${b.id} AND subject LIKE '%tasks.spawn'`.execute(database().db);
        expect(Number(outbox.rows[0]?.n)).toBe(0);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a caller question id outside the id rule (1–128 letters, digits, _ or -) is refused by the library too, before anything is written', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const supervisor = await runtime.spawn({ name: 'asker' });
        const stepBefore = runtime.get(supervisor.id)?.committed.step;
        for (const questionId of ['a/b', '..', 'x'.repeat(129), 'has space']) {
          await expect(runtime.askQuestion(supervisor.id, { questionId, question: 'Go?' })).rejects.toMatchObject({ name: 'InvalidSupervisorDataError', field: 'questionId' });
          await expect(runtime.send(supervisor.id, { type: 'ASK_QUESTION', questionId, question: 'Go?' })).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        }
        expect(runtime.get(supervisor.id)?.committed.step).toBe(stepBefore);
        expect(await runtime.questions(supervisor.id)).toEqual([]);
        await expect(runtime.askQuestion(supervisor.id, { questionId: 'ok_id-1', question: 'Go?' })).resolves.toEqual({ questionId: 'ok_id-1' });
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('two supervisors spawning a task under the same id at the same moment: one gets it, the other is refused with nothing written', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const a = await runtime.spawn({ name: 'a' });
        const b = await runtime.spawn({ name: 'b' });
        for (let n = 0; n < 10; n++) {
          const taskId = `race-${n}`;
          // Both look the id up before either commits, so the check before the save cannot tell: the save must.
          const results = await Promise.allSettled([runtime.spawnTask(a.id, { description: 'x', taskId }), runtime.spawnTask(b.id, { description: 'x', taskId })]);
          const winners = results.flatMap((result, index) => (result.status === 'fulfilled' ? [[a, b][index]!] : []));
          expect(winners, taskId).toHaveLength(1);
          const loser = winners[0] === a ? b : a;
          const refused = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
          expect(String(refused.reason), taskId).toMatch(new RegExp(`${taskId}.*(already used by supervisor|already taken by another supervisor)`));
          const row = await sql<{ supervisor_id: string }>`SELECT supervisor_id FROM supervisor_tasks WHERE id = ${taskId}`.execute(database().db);
          expect(row.rows.map((r) => r.supervisor_id), taskId).toEqual([winners[0]!.id]);
          expect(loser.snapshot.context.tasks.map((task) => task.id), taskId).not.toContain(taskId);
          const outbox = await sql<{ n: string | number }>`
            SELECT count(*) AS n FROM supervisor_outbox WHERE supervisor_id = ${loser.id} AND payload ->> 'taskId' = ${taskId}`.execute(database().db);
          expect(Number(outbox.rows[0]?.n), taskId).toBe(0);
        }
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('a task id that cannot be a subject token is refused before anything happens', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const a = await runtime.spawn({ name: 'a' });
        for (const bad of ['has.dot', 'has space', 'star*', 'gt>', '']) {
          await expect(runtime.spawnTask(a.id, { description: 'x', taskId: bad })).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        }
        expect(a.snapshot.context.tasks).toEqual([]);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
