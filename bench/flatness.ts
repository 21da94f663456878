// A long-lived supervisor: does a save point cost the same at its 2,000th question and task as at its 10th? One
// supervisor asks, is answered, spawns a task and completes it, N rounds, through the runtime; the mean latency of the
// four save points of rounds 10–19 is compared with that of the last ten rounds, and the stored snapshot's size too.

import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Database } from '../src/persistence/database.js';
import { silentLogger } from '../src/runtime/logger.js';
import { createRuntime } from '../src/runtime/supervisor-runtime.js';

export interface FlatnessFigures {
  rounds: number;
  earlyMs: number;
  lateMs: number;
  earlySnapshotBytes: number;
  lateSnapshotBytes: number;
}

export async function measureFlatness(database: Database, rounds: number): Promise<FlatnessFigures> {
  const runtime = createRuntime({ database, heartbeatIntervalMs: 0, logger: silentLogger });
  try {
    const supervisor = await runtime.spawn({ name: 'long-lived' });
    const size = async () =>
      Number(
        (
          await sql<{ n: number }>`SELECT pg_column_size(c.snapshot) AS n FROM supervisor_states s
            JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq WHERE s.id = ${supervisor.id}`.execute(database.db)
        ).rows[0]?.n,
      );
    const perRound: number[] = [];
    let earlySnapshotBytes = 0;
    for (let n = 1; n <= rounds; n++) {
      const started = performance.now();
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: `Round ${n}: proceed with the next batch of changes?`, choices: ['yes', 'no'] });
      await runtime.answerQuestion(supervisor.id, questionId, 'yes');
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: `Round ${n}: apply the batch and run the affected tests` });
      await runtime.reportTaskEvent(taskId, { type: 'completed', result: `Round ${n}: ${'all affected tests pass; '.repeat(8)}` });
      perRound.push((performance.now() - started) / 4);
      if (n === 10) earlySnapshotBytes = await size();
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    return {
      rounds,
      earlyMs: mean(perRound.slice(9, 19)),
      lateMs: mean(perRound.slice(-10)),
      earlySnapshotBytes,
      lateSnapshotBytes: await size(),
    };
  } finally {
    await runtime.shutdown({ closeDatabase: false });
  }
}
