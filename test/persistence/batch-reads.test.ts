// Restore-all reads a claimed batch of 250 supervisors in four queries. Their plans must not depend on the tables'
// statistics: on tables never analyzed (autovacuum off, or just bulk-loaded) an `IN (…250 ids)` read was planned as a
// scan of the whole table, and restore-all of 10,000 supervisors spent 6.7 s of Postgres time counting conversations.
// Here each read runs on 2,000 supervisors' rows that were never analyzed, and every plan looks each id up by index.

import { randomUUID } from 'node:crypto';
import { sql, type KyselyPlugin, type RootOperationNode } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  countConversations,
  getSupervisorStatesForRestoration,
  listOpenTasksOfSupervisors,
  listPendingQuestionsOf,
} from '../../src/persistence/supervisor-repository.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

const SUPERVISORS = 2_000;
const ENTRIES = 6;

/** The scans of whole tables in a plan (EXPLAIN's JSON tree), by relation. */
function seqScans(plan: Record<string, unknown>): string[] {
  const own = plan['Node Type'] === 'Seq Scan' ? [String(plan['Relation Name'])] : [];
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return [...own, ...children.flatMap(seqScans)];
}

for (const target of await databaseTargets()) {
  describe(`batch reads on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('look up each supervisor by index on tables that were never analyzed, and read the right rows', { timeout: 120_000 }, async () => {
      const db = database().db;
      await sql`
        INSERT INTO supervisor_states (id, name, state, checkpoint_seq, step)
        SELECT md5('s' || n)::uuid, 'batch ' || n, 'waiting_for_user', ${ENTRIES}, ${ENTRIES} FROM generate_series(1, ${SUPERVISORS}) AS n`.execute(db);
      await sql`
        INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
        SELECT md5('s' || n)::uuid, k, k, 'bench', 'waiting_for_user', jsonb_build_object('value', 'waiting_for_user', 'k', k), 1
        FROM generate_series(1, ${SUPERVISORS}) AS n, generate_series(1, ${ENTRIES}) AS k`.execute(db);
      await sql`
        INSERT INTO supervisor_conversation (supervisor_id, seq, role, content)
        SELECT md5('s' || n)::uuid, k - 1, 'assistant', 'entry ' || k FROM generate_series(1, ${SUPERVISORS}) AS n, generate_series(1, ${ENTRIES}) AS k`.execute(db);
      // Per supervisor: two running tasks and the rest finished; two pending questions and the rest answered.
      await sql`
        INSERT INTO supervisor_tasks (id, supervisor_id, description, status, finished_at)
        SELECT 't' || n || '-' || k, md5('s' || n)::uuid, 'task', CASE WHEN k <= 2 THEN 'running' ELSE 'completed' END, CASE WHEN k <= 2 THEN NULL ELSE now() END
        FROM generate_series(1, ${SUPERVISORS}) AS n, generate_series(1, ${ENTRIES}) AS k`.execute(db);
      await sql`
        INSERT INTO supervisor_questions (supervisor_id, id, question, asked_at, answer, answered_at)
        SELECT md5('s' || n)::uuid, 'q' || k, 'question ' || k, now(), CASE WHEN k <= 2 THEN NULL ELSE 'yes' END, CASE WHEN k <= 2 THEN NULL ELSE now() END
        FROM generate_series(1, ${SUPERVISORS}) AS n, generate_series(1, ${ENTRIES}) AS k`.execute(db);

      const ids = (await sql<{ id: string }>`SELECT md5('s' || n)::uuid AS id FROM generate_series(1001, 1250) AS n`.execute(db)).rows.map((row) => row.id);
      const stranger = randomUUID();
      const captured: RootOperationNode[] = [];
      const capture: KyselyPlugin = {
        transformQuery: (args) => {
          captured.push(args.node);
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const watched = db.withPlugin(capture);

      const rows = await getSupervisorStatesForRestoration(watched, [...ids, stranger]);
      const tasks = await listOpenTasksOfSupervisors(watched, ids);
      const conversations = await countConversations(watched, [...ids, stranger]);
      const pending = await listPendingQuestionsOf(watched, ids);

      expect(rows.size).toBe(250);
      expect(rows.get(ids[0]!)?.snapshot).toEqual({ value: 'waiting_for_user', k: ENTRIES });
      expect(rows.has(stranger)).toBe(false);
      expect([...tasks.values()].map((list) => list.length)).toEqual(ids.map(() => 2));
      expect([...conversations.values()]).toEqual([...ids.map(() => ENTRIES), 0]);
      expect([...pending.values()].map((list) => list.map((question) => question.id))).toEqual(ids.map(() => ['q1', 'q2']));

      expect(captured).toHaveLength(4);
      for (const node of captured) {
        const compiled = watched.getExecutor().compileQuery(node, { queryId: 'explain' });
        // The same statement with its own parameters, explained.
        const result = await db.executeQuery({ ...compiled, sql: `EXPLAIN (FORMAT JSON) ${compiled.sql}` });
        const cell = (result.rows[0] as Record<string, unknown>)['QUERY PLAN'];
        const [entry] = (typeof cell === 'string' ? JSON.parse(cell) : cell) as Array<{ Plan: Record<string, unknown> }>;
        expect({ sql: compiled.sql.slice(0, 80), seqScans: seqScans(entry!.Plan) }).toEqual({ sql: compiled.sql.slice(0, 80), seqScans: [] });
      }
    });
  });
}
