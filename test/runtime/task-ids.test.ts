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
