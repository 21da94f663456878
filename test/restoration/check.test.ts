import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/persistence/database.js';
import { listCheckpoints, recordTaskOutcome } from '../../src/persistence/supervisor-repository.js';
import { createApiServer } from '../../src/api/server.js';
import { checkStoredStates, type CheckReport } from '../../src/runtime/check.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { runCliHere } from '../helpers/processes.js';

function runtimeOn(database: Database): SupervisorRuntime {
  return createRuntime({ database, heartbeatIntervalMs: 0 });
}

async function busySupervisor(runtime: SupervisorRuntime, name: string) {
  const supervisor = await runtime.spawn({ name });
  const t1 = await runtime.spawnTask(supervisor.id, { description: 'compile' });
  const t2 = await runtime.spawnTask(supervisor.id, { description: 'test' });
  const q1 = await runtime.askQuestion(supervisor.id, { question: 'Ship on Friday?', choices: ['yes', 'no'] });
  const q2 = await runtime.askQuestion(supervisor.id, { question: 'Which region?' });
  return { id: supervisor.id, tasks: [t1.taskId, t2.taskId], questions: [q1.questionId, q2.questionId] };
}

/** Everything a check could have written: the rows' fences and times, and the size of every table a restore writes. */
async function fingerprint(database: Database) {
  const rows = await sql<{ id: string; owner: string | null; epoch: string; step: string; updated: string; seq: string }>`
    SELECT id, owner, epoch::text, step::text, updated_at::text AS updated, checkpoint_seq::text AS seq FROM supervisor_states ORDER BY id`.execute(database.db);
  const counts = await sql<Record<string, string>>`
    SELECT (SELECT count(*) FROM supervisor_checkpoints)::text AS checkpoints, (SELECT count(*) FROM supervisor_quarantine)::text AS quarantine,
           (SELECT count(*) FROM supervisor_outbox)::text AS outbox, (SELECT count(*) FROM supervisor_conversation)::text AS conversation,
           (SELECT count(*) FROM supervisor_questions WHERE answered_at IS NOT NULL)::text AS answered`.execute(database.db);
  return { rows: rows.rows, counts: counts.rows[0] };
}

for (const target of await databaseTargets()) {
  describe(`restoration dry-run (check) on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('says for each stored supervisor what its restore then does (as stored, from which checkpoint, fresh), with the warnings, and writes nothing', async () => {
      const first = runtimeOn(database());
      const valid = await busySupervisor(first, 'valid');
      const brokenRow = await busySupervisor(first, 'broken row');
      const hopeless = await busySupervisor(first, 'hopeless');
      const done = await first.spawn({ name: 'done' });
      await first.send(done.id, { type: 'COMPLETE' });
      // The first daemon dies (nothing released); what happens while nobody runs them:
      await first.shutdown({ closeDatabase: false });
      // a worker records a task's completion, and a question is answered in the table only;
      await recordTaskOutcome(db(), valid.tasks[0] as string, { status: 'completed', result: 'binary built' });
      await sql`UPDATE supervisor_questions SET answer = 'yes', answered_at = now() WHERE supervisor_id = ${valid.id} AND id = ${valid.questions[0] as string}`.execute(db());
      // one row's columns are corrupted (its newest checkpoint is fine); one supervisor is from an unknown machine version.
      await sql`UPDATE supervisor_states SET spawned_task_ids = array_append(spawned_task_ids, 'ghost') WHERE id = ${brokenRow.id}`.execute(db());
      await sql`UPDATE supervisor_states SET machine_version = 99 WHERE id = ${hopeless.id}`.execute(db());
      await sql`UPDATE supervisor_checkpoints SET machine_version = 99 WHERE supervisor_id = ${hopeless.id}`.execute(db());
      const newestOfBroken = (await listCheckpoints(db(), brokenRow.id, { limit: 1 }))[0];

      const before = await fingerprint(database());
      const report = await checkStoredStates(db(), { batchSize: 2 });
      expect(await fingerprint(database())).toEqual(before);

      expect(report).toMatchObject({ checked: 4, restore: 2, fromCheckpoint: 1, startFresh: 1, notFound: 0 });
      const byId = new Map(report.supervisors.map((entry) => [entry.supervisorId, entry]));
      expect(report.supervisors.map((entry) => entry.supervisorId)).toEqual([...byId.keys()].sort());
      expect(byId.get(valid.id)).toMatchObject({ name: 'valid', state: 'waiting_for_user', finished: false, verdict: 'restore', checkpointSeq: null, errors: [] });
      expect(byId.get(valid.id)?.warnings).toEqual([
        `question ${valid.questions[0]} was answered after the restored state: applied its answer`,
        `task ${valid.tasks[0]} completed while nobody ran the supervisor: its result would be applied`,
      ]);
      expect(byId.get(brokenRow.id)).toMatchObject({ verdict: 'restore_from_checkpoint', checkpointSeq: newestOfBroken?.seq });
      expect(byId.get(brokenRow.id)?.errors.join(' ')).toMatch(/spawned_task_ids .* differ from the snapshot's tasks/);
      expect(byId.get(hopeless.id)).toMatchObject({ verdict: 'start_fresh', checkpointSeq: null });
      expect(byId.get(hopeless.id)?.errors.join(' ')).toMatch(/machine version 99/);
      expect(byId.get(done.id)).toMatchObject({ state: 'completed', finished: true, verdict: 'restore', errors: [], warnings: [] });
      // Every row still names the dead daemon: check reports the owner as stored.
      expect(new Set(report.supervisors.map((entry) => entry.owner))).toEqual(new Set([before.rows[0]?.owner]));
      expect(report.supervisors.every((entry) => !entry.ownerLive)).toBe(true);

      // The restores then do what the check said.
      const second = runtimeOn(database());
      const summary = await second.restoreAll();
      expect(summary.failed).toEqual([]);
      for (const info of summary.results) {
        const checked = byId.get(info.supervisorId);
        expect(info.recoveryAction).toBe(checked?.verdict);
        expect(info.checkpointSeq).toBe(checked?.checkpointSeq);
      }
      expect(summary.results.map((info) => info.supervisorId).sort()).toEqual([valid.id, brokenRow.id, hopeless.id].sort());
      const restoredValid = summary.results.find((info) => info.supervisorId === valid.id);
      expect(restoredValid?.warnings).toContain(`question ${valid.questions[0]} was answered after the restored state: applied its answer`);
      expect(restoredValid?.tasksReconciled.find((task) => task.taskId === valid.tasks[0])?.action).toBe('applied_completion');
      await second.shutdown({ closeDatabase: false });
    });

    it('a running daemon answers the same check over HTTP (all, or one), and `check --url` prints it and exits 1 while one would not restore as stored', async () => {
      const runtime = runtimeOn(database());
      const app = await createApiServer(runtime);
      try {
        const good = await runtime.spawn({ name: 'good' });
        const bad = await runtime.spawn({ name: 'bad' });
        await sql`UPDATE supervisor_states SET spawned_task_ids = array_append(spawned_task_ids, 'ghost') WHERE id = ${bad.id}`.execute(db());
        const all = await app.inject({ method: 'GET', url: '/check' });
        expect(all.statusCode).toBe(200);
        const report = all.json<CheckReport>();
        expect(report).toMatchObject({ checked: 2, restore: 1, fromCheckpoint: 1 });
        // Both run on this daemon right now: the verdicts are what a takeover would do.
        expect(report.supervisors.every((entry) => entry.ownerLive && entry.owner === runtime.daemonId)).toBe(true);
        const one = await app.inject({ method: 'GET', url: `/supervisors/${good.id}/check` });
        expect(one.json<CheckReport>()).toMatchObject({ checked: 1, restore: 1, supervisors: [{ supervisorId: good.id, verdict: 'restore' }] });
        expect((await app.inject({ method: 'GET', url: '/supervisors/not-a-uuid/check' })).statusCode).toBe(400);
        expect((await app.inject({ method: 'GET', url: '/check?supervisorId=1' })).statusCode).toBe(400);

        const url = await app.listen({ host: '127.0.0.1', port: 0 });
        const printed = await runCliHere(['check', '--url', url]);
        expect(printed.stderr).toBe('');
        expect(printed.code).toBe(1);
        expect(printed.stdout).toMatch(new RegExp(`${bad.id}  bad .* \\(running\\)  from checkpoint #\\d+`));
        const justGood = await runCliHere(['check', '--url', url, good.id, '--json']);
        expect(justGood.code).toBe(0);
        expect(JSON.parse(justGood.stdout)).toMatchObject({ checked: 1, restore: 1 });
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('checks the ids given, in their order, in any case; ids stored nowhere or no UUID at all are not found', async () => {
      const runtime = runtimeOn(database());
      const one = await runtime.spawn({ name: 'one' });
      const two = await runtime.spawn({ name: 'two' });
      // While its daemon runs, the owner is live (a restore would be a takeover); after it stops, its lease has ended.
      expect((await checkStoredStates(db(), { supervisorIds: [one.id] })).supervisors[0]).toMatchObject({ verdict: 'restore', ownerLive: true, owner: expect.any(String) });
      await runtime.shutdown({ closeDatabase: false });
      const unknown = randomUUID();
      const report = await checkStoredStates(db(), { supervisorIds: [two.id.toUpperCase(), unknown, 'not-a-uuid', one.id] });
      expect(report.supervisors.map((entry) => [entry.supervisorId, entry.verdict])).toEqual([
        [two.id, 'restore'],
        [unknown, 'not_found'],
        ['not-a-uuid', 'not_found'],
        [one.id, 'restore'],
      ]);
      expect(report).toMatchObject({ checked: 4, restore: 2, notFound: 2 });
      expect(report.supervisors[0]).toMatchObject({ name: 'two', state: 'idle', epoch: expect.any(Number), ownerLive: false });
    });
  });
}
