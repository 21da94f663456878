import { sql, type KyselyPlugin } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { saveReasons } from '../runtime/runtime-fixtures.js';

async function inParallel<T>(count: number, limit: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await run(index);
      }
    }),
  );
  return results;
}

for (const target of await databaseTargets()) {
  describe(`restore-all on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('brings back 1,000 supervisors after a kill, skipping completed ones', { timeout: 180_000 }, async () => {
      const first = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const ids = await inParallel(1_000, 16, async (index) => {
        const supervisor = await first.spawn({ name: `bulk-${index}` });
        if (index % 3 === 0) await first.askQuestion(supervisor.id, { question: `q${index}?` });
        if (index % 3 === 1) await first.spawnTask(supervisor.id, { description: `t${index}` });
        if (index % 3 === 2 && index < 60) await first.send(supervisor.id, { type: 'COMPLETE' });
        return supervisor.id;
      });
      const expected = new Map(ids.map((id) => [id, first.get(id)?.state]));
      await first.shutdown({ closeDatabase: false });

      // The RESTORED save points of each save statement: restores waiting on one commit at once, which the
      // concurrency bounds even while two claimed batches overlap.
      const restoredPerStatement: number[] = [];
      const watch: KyselyPlugin = {
        transformQuery: ({ node }) => {
          const reasons = saveReasons(node);
          if (reasons.length > 0) restoredPerStatement.push(reasons.filter((reason) => reason === 'restored').length);
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      const second = createRuntime({ database: { ...database(), db: database().db.withPlugin(watch) }, heartbeatIntervalMs: 0 });
      const summary = await second.restoreAll({ concurrency: 16 });
      expect(restoredPerStatement.reduce((sum, n) => sum + n, 0)).toBe(980);
      expect(Math.max(...restoredPerStatement)).toBeLessThanOrEqual(16);
      expect(summary.failed).toEqual([]);
      expect(summary.total).toBe(980);
      expect(summary.restored).toBe(980);
      expect(summary.fromCheckpoint + summary.startedFresh).toBe(0);
      for (const info of summary.results) expect(info.restoredState).toBe(expected.get(info.supervisorId));
      expect(second.list()).toHaveLength(980);
      const counts = await sql<{ restoration_count: number; n: string | number }>`
        SELECT restoration_count, count(*) AS n FROM supervisor_states GROUP BY restoration_count ORDER BY restoration_count`.execute(database().db);
      expect(counts.rows.map((row) => [row.restoration_count, Number(row.n)])).toEqual([
        [0, 20],
        [1, 980],
      ]);
      await second.shutdown({ closeDatabase: false });
    });
  });
}
