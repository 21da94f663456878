// Bounded state: a supervisor that has asked and had answered 2,000 questions and run 2,000 tasks stores a snapshot
// no bigger, and sends save statements no bigger, than after its 10th. Finished work leaves the snapshot (its rows stay
// in supervisor_questions and supervisor_tasks); only counters grow. Sizes are deterministic, so they are asserted
// here; how long a save takes is a speed goal and lives in the bench, never in a timed unit test.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/persistence/database.js';
import type { Executor } from '../../src/persistence/supervisor-repository.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { observeCommits, useRuntimes, type CommittedStatement } from './runtime-fixtures.js';

const ROUNDS = 2_000;
const EARLY_ROUND = 10;
/** The bound: flat within ± 20 % from the 10th round to the 2,000th. */
const TOLERANCE = 0.2;

/** One database is enough for a size property (and 8,000 save points are slow to repeat): Postgres when reachable. */
const targets = await databaseTargets();
const target = targets.find((candidate) => candidate.name === 'postgres') ?? targets.find((candidate) => candidate.name === 'pglite');
if (!target) throw new Error('no database target');

/** The current snapshot, as stored: in the checkpoint the row points to. */
async function storedSnapshot(db: Executor, supervisorId: string) {
  const result = await sql<{ bytes: string | number; snapshot: unknown }>`
    SELECT pg_column_size(c.snapshot) AS bytes, c.snapshot
    FROM supervisor_states s JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq
    WHERE s.id = ${supervisorId}`.execute(db);
  const row = result.rows[0];
  if (!row) throw new Error(`no current snapshot for ${supervisorId}`);
  const snapshot = typeof row.snapshot === 'string' ? (JSON.parse(row.snapshot) as unknown) : row.snapshot;
  return { columnBytes: Number(row.bytes), jsonLength: JSON.stringify(snapshot).length };
}

/** What a statement sends: the characters of its parameters. */
function bytesSent(statement: CommittedStatement): number {
  return statement.parameters.reduce<number>((sum, parameter) => sum + String(parameter).length, 0);
}

function expectWithinTolerance(label: string, early: number, late: number): void {
  expect(early, `${label} at round ${EARLY_ROUND}`).toBeGreaterThan(0);
  expect(Math.abs(late - early) / early, `${label}: ${early} at round ${EARLY_ROUND}, ${late} at round ${ROUNDS}`).toBeLessThanOrEqual(TOLERANCE);
}

describe(`bounded state on ${target.name}`, () => {
  // Sizes do not depend on when the server flushes its log: without waiting for each of the 8,000 commits to reach
  // the disk the test takes half the time. Durability of a commit is what the fault suites test.
  const database = useIsolatedDatabase(target, { serverOptions: '-c synchronous_commit=off' });
  const db = () => database().db;
  let observed: Database | undefined;
  const startRuntime = useRuntimes(() => {
    if (!observed) throw new Error('observe the database before starting a runtime');
    return observed;
  });

  it(
    `2,000 questions and 2,000 tasks leave the stored snapshot and each full save statement as large as after the 10th`,
    async () => {
      let commits: CommittedStatement[] = [];
      observed = observeCommits(database(), (statement) => {
        if (statement.kind === 'full') commits.push(statement);
      });
      const runtime = startRuntime();
      const supervisor = await runtime.spawn({ name: 'long runner' });
      const id = supervisor.id;

      type Measure = { snapshot: Awaited<ReturnType<typeof storedSnapshot>>; statementBytes: number[] };
      const measured = new Map<number, Measure>();
      for (let round = 1; round <= ROUNDS; round += 1) {
        commits = [];
        // Same-length texts every round, so only what the design lets grow could grow.
        const label = String(round).padStart(4, '0');
        const { questionId } = await runtime.askQuestion(id, { question: `Question ${label}: go ahead?` });
        await runtime.answerQuestion(id, questionId, `answer ${label}`);
        const { taskId } = await runtime.spawnTask(id, { description: `task ${label}` });
        await runtime.reportTaskEvent(taskId, { type: 'completed', result: `result ${label}` });
        if (round === EARLY_ROUND || round === ROUNDS) {
          expect(commits.map((statement) => statement.kind), `full saves of round ${round}`).toEqual(['full', 'full', 'full', 'full']);
          measured.set(round, { snapshot: await storedSnapshot(db(), id), statementBytes: commits.map(bytesSent) });
        }
      }

      const early = measured.get(EARLY_ROUND);
      const late = measured.get(ROUNDS);
      if (!early || !late) throw new Error('rounds not measured');
      // 1. The stored current snapshot.
      expectWithinTolerance('pg_column_size of the current snapshot', early.snapshot.columnBytes, late.snapshot.columnBytes);
      expectWithinTolerance('JSON length of the current snapshot', early.snapshot.jsonLength, late.snapshot.jsonLength);
      // 2. What each full save statement of the round sends (ask, answer, spawn, complete), and the round in all.
      const steps = ['ask', 'answer', 'spawn', 'complete'];
      steps.forEach((step, index) => expectWithinTolerance(`parameters of the ${step} save`, early.statementBytes[index] ?? 0, late.statementBytes[index] ?? 0));
      const total = (bytes: number[]) => bytes.reduce((sum, value) => sum + value, 0);
      expectWithinTolerance('parameters of the round', total(early.statementBytes), total(late.statementBytes));

      // 3. The history is in the rows; the snapshot holds open work and counters only.
      const counts = await sql<{ asked: string | number; answered: string | number }>`
        SELECT count(*) AS asked, count(*) FILTER (WHERE answer IS NOT NULL AND answered_at IS NOT NULL) AS answered
        FROM supervisor_questions WHERE supervisor_id = ${id}`.execute(db());
      expect(counts.rows.map((row) => [Number(row.asked), Number(row.answered)])).toEqual([[ROUNDS, ROUNDS]]);
      const tasks = await sql<{ spawned: string | number; completed: string | number }>`
        SELECT count(*) AS spawned, count(*) FILTER (WHERE status = 'completed') AS completed
        FROM supervisor_tasks WHERE supervisor_id = ${id}`.execute(db());
      expect(tasks.rows.map((row) => [Number(row.spawned), Number(row.completed)])).toEqual([[ROUNDS, ROUNDS]]);
      const open = { tasks: [], pendingQuestions: [], answeredQuestionCount: ROUNDS, completedTaskCount: ROUNDS, failedTaskCount: 0 };
      expect(supervisor.snapshot.context).toMatchObject(open);

      // A second runtime on the same database restores it, counters and all.
      await runtime.shutdown({ closeDatabase: false });
      const second = startRuntime();
      const info = await second.restore(id, 'manual');
      expect(info).toMatchObject({ recoveryAction: 'restore', restoredState: supervisor.state, questionsRedelivered: [], tasksResumed: [] });
      expect(info.validation.valid).toBe(true);
      expect(second.get(id)?.snapshot.context).toMatchObject({ ...open, restorationCount: 1, restorationSource: 'manual' });
    },
    240_000,
  );
});
