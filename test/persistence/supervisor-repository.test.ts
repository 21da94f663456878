import { randomUUID } from 'node:crypto';
import { sql, type KyselyPlugin } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, InvalidSnapshotError, InvalidSupervisorDataError, SupervisorNotFoundError } from '../../src/domain/errors.js';
import { SUPERVISOR_STATES, type SupervisorState } from '../../src/domain/supervisor-state.js';
import { openDatabase } from '../../src/persistence/database.js';
import {
  getConversation,
  getNewestCheckpointBefore,
  getSupervisorState,
  getTask,
  getSupervisorStateForRestoration,
  getSupervisorsWithPendingQuestions,
  listCheckpoints,
  listRestorableSupervisorIds,
  listSupervisors,
  recordTaskOutcome,
  saveSupervisorStateFull,
  saveSupervisorStatesFull,
  StaleWriteError,
  updateSupervisorHeartbeatState,
  validateSpawnedTasks,
} from '../../src/persistence/supervisor-repository.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { fullSave, question } from '../helpers/fixtures.js';

for (const target of await databaseTargets()) {
  describe(`supervisor repository on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    async function count(table: string, supervisorId: string): Promise<number> {
      const result = await sql<{ n: string | number }>`SELECT count(*) AS n FROM ${sql.table(table)} WHERE supervisor_id = ${supervisorId}`.execute(db());
      return Number(result.rows[0]?.n);
    }

    it('the SQL enum lists exactly the SupervisorState values, in order', async () => {
      const result = await sql<{ label: string }>`
        SELECT e.enumlabel AS label FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'supervisor_state' AND n.nspname = current_schema() ORDER BY e.enumsortorder`.execute(db());
      expect(result.rows.map((row) => row.label)).toEqual([...SUPERVISOR_STATES]);
    });

    it('supervisor_states has every column of the base and enhanced migrations', async () => {
      const result = await sql<{ column_name: string }>`
        SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'supervisor_states'`.execute(db());
      const columns = result.rows.map((row) => row.column_name);
      for (const column of [
        'id', 'name', 'phase', 'conversation_ref', 'last_heartbeat', 'owner', 'created_at', 'updated_at',
        'state', 'current_activity', 'progress', 'error_message', 'spawned_task_ids', 'pending_questions',
        'restoration_count', 'last_restored_at', 'restoration_source',
      ]) {
        expect(columns).toContain(column);
      }
    });

    it('a full save inserts the row and checkpoint 1, then updates the row and appends checkpoint 2', async () => {
      const first = fullSave({ reason: 'spawned' });
      expect(await saveSupervisorStateFull(db(), first)).toEqual({ checkpointSeq: 1 });
      const second = { ...first, step: 2, state: 'waiting_for_user' as SupervisorState, pendingQuestions: [question('q1')], reason: 'question_asked' };
      expect(await saveSupervisorStateFull(db(), second)).toEqual({ checkpointSeq: 2 });

      const row = await getSupervisorState(db(), first.supervisorId);
      expect(row).toMatchObject({ state: 'waiting_for_user', phase: 'planning', progress: 10, step: 2, checkpointSeq: 2, pendingQuestions: [question('q1')] });
      const checkpoints = await listCheckpoints(db(), first.supervisorId);
      expect(checkpoints.map((checkpoint) => [checkpoint.seq, checkpoint.reason, checkpoint.state])).toEqual([
        [2, 'question_asked', 'waiting_for_user'],
        [1, 'spawned', 'working'],
      ]);
      expect(checkpoints[0]?.snapshot).toEqual(second.snapshot);
    });

    it("the row's pending questions come from the snapshot when they are its own list, and from the input when they differ", async () => {
      const pending = [question('q1'), question('q2')];
      const shared = fullSave({ state: 'waiting_for_user', pendingQuestions: pending, snapshot: { status: 'active', context: { pendingQuestions: pending } } });
      await saveSupervisorStateFull(db(), shared);
      expect((await getSupervisorState(db(), shared.supervisorId))?.pendingQuestions).toEqual(pending);

      // An input whose list is not the snapshot's (an edit that names its own) stores the list it names.
      const own = fullSave({ state: 'waiting_for_user', pendingQuestions: [question('q3')], snapshot: { status: 'active', context: { pendingQuestions: pending } } });
      await saveSupervisorStateFull(db(), own);
      expect((await getSupervisorState(db(), own.supervisorId))?.pendingQuestions).toEqual([question('q3')]);

      // The snapshot's list emptied: the row's list empties with it (and the partial index stops listing it).
      const answered = { ...shared, step: shared.step + 1, state: 'working' as SupervisorState, pendingQuestions: [] as typeof pending };
      await saveSupervisorStateFull(db(), { ...answered, snapshot: { status: 'active', context: { pendingQuestions: answered.pendingQuestions } } });
      expect((await getSupervisorState(db(), shared.supervisorId))?.pendingQuestions).toEqual([]);
      expect((await getSupervisorsWithPendingQuestions(db())).map((row) => row.supervisorId)).toEqual([own.supervisorId]);
    });

    it('a full save writes its conversation entries, task rows and outbox messages in the same statement', async () => {
      const input = fullSave({
        spawnedTaskIds: ['t1'],
        conversationLength: 2,
        conversation: [
          { seq: 0, role: 'system', content: 'started', at: '2026-11-24T10:00:00.000Z' },
          { seq: 1, role: 'assistant', content: 'Spawned task t1', at: '2026-11-24T10:00:01.000Z' },
        ],
        tasks: [{ id: 't1', description: 'index the repo', status: 'running', progress: 0, result: null, error: null, finishedAt: null }],
        outbox: [{ subject: 'tasks.spawn', payload: { v: 1, taskId: 't1' }, msgId: 'x:1:0' }],
      });
      await saveSupervisorStateFull(db(), input);
      expect((await getConversation(db(), input.supervisorId)).map((entry) => entry.content)).toEqual(['started', 'Spawned task t1']);
      expect(await validateSpawnedTasks(db(), input.supervisorId, ['t1'])).toMatchObject({ existing: [{ id: 't1', status: 'running' }], missing: [] });
      const outbox = await db().selectFrom('supervisor_outbox').selectAll().where('supervisor_id', '=', input.supervisorId).execute();
      expect(outbox.map((row) => [row.subject, row.msg_id, row.payload])).toEqual([['tasks.spawn', 'x:1:0', { v: 1, taskId: 't1' }]]);
    });

    it('one supervisor saved alone (plain parameters) and the same save inside a group (one jsonb document) store the same row and checkpoint', async () => {
      const at = '2026-03-04T05:06:07.000Z';
      const input = (supervisorId: string) =>
        fullSave({
          supervisorId,
          state: 'waiting_for_user',
          currentActivity: null,
          spawnedTaskIds: ['t-1', 't-2'],
          pendingQuestions: [question('q1')],
          restorationCount: 2,
          lastRestoredAt: at,
          restorationSource: 'manual',
          lastHeartbeat: at,
          conversationLength: 3,
          owner: 'daemon-a',
          epoch: 4,
          driver: 'scripted',
          snapshot: { status: 'active', value: 'waiting_for_user', context: { supervisorId, note: 'ünïcode ✓' } },
        });
      const alone = input(randomUUID());
      const grouped = input(randomUUID());
      const other = fullSave();
      expect(await saveSupervisorStateFull(db(), alone)).toEqual({ checkpointSeq: 1 });
      const outcomes = await saveSupervisorStatesFull(db(), [grouped, other]);
      expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true]);

      const stored = async (supervisorId: string) => {
        const row = await db().selectFrom('supervisor_states').selectAll().where('id', '=', supervisorId).executeTakeFirstOrThrow();
        const [checkpoint] = await listCheckpoints(db(), supervisorId);
        const { id: _id, created_at: _created, updated_at: _updated, ...columns } = row;
        const snapshot = checkpoint?.snapshot as { context: Record<string, unknown> };
        const context: Record<string, unknown> = { ...snapshot.context, supervisorId: 'same' };
        return { columns, reason: checkpoint?.reason, state: checkpoint?.state, context };
      };
      const [a, b] = [await stored(alone.supervisorId), await stored(grouped.supervisorId)];
      expect(a).toEqual(b);
      expect(a.columns).toMatchObject({ state: 'waiting_for_user', spawned_task_ids: ['t-1', 't-2'], pending_questions: [question('q1')], owner: 'daemon-a', driver: 'scripted' });
      expect(Number(a.columns.epoch)).toBe(4);
      expect(a.context.note).toBe('ünïcode ✓');

      // The fences hold in both forms: a save under another owner, or at an old step, writes nothing.
      await expect(saveSupervisorStateFull(db(), { ...alone, step: 2, owner: 'daemon-b' })).rejects.toThrow(/lost it and wrote nothing/);
      const refused = await saveSupervisorStatesFull(db(), [{ ...grouped, step: 1, reason: 'again' }, { ...other, step: 2 }]);
      expect(refused.map((outcome) => (outcome.ok ? 'ok' : outcome.error.name))).toEqual(['StaleWriteError', 'ok']);
    });

    it('a raw save (no owner, no epoch) lands only on a row nobody ever claimed; on an owned row it is refused as an ownership conflict', async () => {
      const raw = fullSave();
      expect(await saveSupervisorStateFull(db(), raw)).toEqual({ checkpointSeq: 1 });
      expect(await saveSupervisorStateFull(db(), { ...raw, step: 2 })).toEqual({ checkpointSeq: 2 });
      await sql`UPDATE supervisor_states SET owner = 'daemon-a', epoch = 1 WHERE id = ${raw.supervisorId}`.execute(db());
      await expect(saveSupervisorStateFull(db(), { ...raw, step: 3, phase: 'raw edit' })).rejects.toThrow(/daemon-a/);
      await expect(saveSupervisorStateFull(db(), { ...raw, step: 3, phase: 'raw edit' })).rejects.toHaveProperty('name', 'OwnershipLostError');
      expect(await getSupervisorState(db(), raw.supervisorId)).toMatchObject({ step: 2, phase: 'planning' });
      // An older step on a row nobody owns is still a stale write.
      await sql`UPDATE supervisor_states SET owner = NULL, epoch = 0 WHERE id = ${raw.supervisorId}`.execute(db());
      await expect(saveSupervisorStateFull(db(), { ...raw, step: 1 })).rejects.toBeInstanceOf(StaleWriteError);
    });

    it('an earlier step never overwrites a later one, and a refused save writes nothing at all', async () => {
      const input = fullSave({ step: 5 });
      await saveSupervisorStateFull(db(), input);
      const stale = { ...input, step: 4, state: 'failed' as SupervisorState, errorMessage: 'old', outbox: [{ subject: 's', payload: {}, msgId: 'stale:4:0' }] };
      await expect(saveSupervisorStateFull(db(), stale)).rejects.toBeInstanceOf(StaleWriteError);
      await expect(saveSupervisorStateFull(db(), { ...input, step: 5 })).rejects.toBeInstanceOf(StaleWriteError);
      expect((await getSupervisorState(db(), input.supervisorId))?.state).toBe('working');
      expect(await count('supervisor_checkpoints', input.supervisorId)).toBe(1);
      expect(await count('supervisor_outbox', input.supervisorId)).toBe(0);
    });

    it('when the read of why some group members were refused fails, the members that committed are still acknowledged', async () => {
      const stale = fullSave({ step: 5 });
      await saveSupervisorStateFull(db(), stale);
      // The connection drops after the group statement committed: the next query (the refused members' fences) fails.
      let queries = 0;
      const dropAfterCommit: KyselyPlugin = {
        transformQuery(args) {
          queries += 1;
          if (queries === 2) throw new DatabaseUnavailableError('currentFences', undefined, new Error('Connection terminated unexpectedly'));
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const fresh = fullSave({ step: 1 });
      const outcomes = await saveSupervisorStatesFull(db().withPlugin(dropAfterCommit), [fresh, { ...stale, step: 3 }]);
      expect(queries).toBe(2);
      expect(outcomes[0]).toEqual({ ok: true, result: { checkpointSeq: 1 } });
      expect(outcomes[1]).toMatchObject({ ok: false, error: { name: 'DatabaseUnavailableError' } });
      expect(await getSupervisorState(db(), fresh.supervisorId)).toMatchObject({ step: 1 });
      expect(await getSupervisorState(db(), stale.supervisorId)).toMatchObject({ step: 5 });
    });

    it("a save naming another supervisor's task id fails alone with nothing written; the rest of its group commits", async () => {
      const task = { id: 'shared-task', description: 'd', status: 'running' as const, progress: 0, result: null, error: null, finishedAt: null };
      const owner = fullSave({ spawnedTaskIds: ['shared-task'], tasks: [task] });
      const intruder = fullSave({ spawnedTaskIds: ['shared-task'], tasks: [task] });
      const outcomes = await saveSupervisorStatesFull(db(), [owner, intruder]);
      expect(outcomes[0]).toEqual({ ok: true, result: { checkpointSeq: 1 } });
      expect(outcomes[1]).toMatchObject({ ok: false, error: { name: 'InvalidSupervisorDataError' } });
      expect(outcomes[1]?.ok === false && outcomes[1].error.message).toMatch(/task id "shared-task" is already taken by another supervisor's task; nothing was written/);
      expect(await getSupervisorState(db(), intruder.supervisorId)).toBeNull();
      expect((await getTask(db(), 'shared-task'))?.supervisorId).toBe(owner.supervisorId);
      // The owner's own later save of the same task still updates its row.
      const [again] = await saveSupervisorStatesFull(db(), [{ ...owner, step: 2, tasks: [{ ...task, progress: 40 }] }]);
      expect(again?.ok).toBe(true);
      expect((await getTask(db(), 'shared-task'))?.progress).toBe(40);
    });

    it('a finished task row never goes back to running when an older view of it is saved', async () => {
      const input = fullSave({ spawnedTaskIds: ['t9'], tasks: [{ id: 't9', description: '', status: 'running', progress: 0, result: null, error: null, finishedAt: null }] });
      await saveSupervisorStateFull(db(), input);
      expect(await recordTaskOutcome(db(), 't9', { status: 'completed', result: 'done' })).toBe(true);
      expect(await recordTaskOutcome(db(), 't9', { status: 'failed', error: 'late' })).toBe(false);
      await saveSupervisorStateFull(db(), { ...input, step: 2 });
      expect((await validateSpawnedTasks(db(), input.supervisorId, ['t9'])).existing[0]).toMatchObject({ status: 'completed', result: 'done', progress: 100 });
    });

    it('validateSpawnedTasks reports existing and missing ids', async () => {
      const input = fullSave({ spawnedTaskIds: ['task-a'], tasks: [{ id: 'task-a', description: 'A', status: 'running', progress: 0, result: null, error: null, finishedAt: null }] });
      await saveSupervisorStateFull(db(), input);
      const validation = await validateSpawnedTasks(db(), input.supervisorId, ['task-a', 'task-gone']);
      expect(validation.existing).toHaveLength(1);
      expect(validation.existing[0]).toMatchObject({ id: 'task-a', status: 'running', description: 'A' });
      expect(validation.missing).toEqual(['task-gone']);
    });

    it('getSupervisorsWithPendingQuestions returns only supervisors with questions, through the partial index', async () => {
      const asking = fullSave({ pendingQuestions: [question('q1')], state: 'waiting_for_user' });
      await saveSupervisorStateFull(db(), asking);
      await saveSupervisorStateFull(db(), fullSave());
      const found = await getSupervisorsWithPendingQuestions(db());
      expect(found.map((row) => row.supervisorId)).toEqual([asking.supervisorId]);
      expect(found[0]?.pendingQuestions).toEqual([question('q1')]);
      const indexes = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'supervisor_states_pending_questions_idx'`.execute(db());
      expect(indexes.rows[0]?.indexdef).toContain("WHERE (pending_questions <> '[]'::jsonb)");
      expect((await listSupervisors(db(), { pendingQuestionsOnly: true })).supervisors.map((s) => s.id)).toEqual([asking.supervisorId]);
    });

    it('lists supervisors newest first one page at a time: every row once across the pages, ties in time included, next null on the last', async () => {
      // Three saved in one statement share their created_at: the id breaks the tie, so no page repeats or skips one.
      const together = [fullSave(), fullSave(), fullSave()];
      await saveSupervisorStatesFull(db(), together);
      const later = [fullSave(), fullSave()];
      for (const input of later) await saveSupervisorStateFull(db(), input);
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await listSupervisors(db(), { limit: 2, ...(after ? { after } : {}) });
        pages.push(page.supervisors.map((supervisor) => supervisor.id));
        if (!page.next) break;
        expect(page.next).toBe(page.supervisors.at(-1)?.id);
        after = page.next;
      }
      expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
      const listed = pages.flat();
      expect(listed).toEqual([...(await listSupervisors(db())).supervisors.map((supervisor) => supervisor.id)]);
      expect(new Set(listed)).toEqual(new Set([...together, ...later].map((input) => input.supervisorId)));
      expect(listed.slice(0, 2)).toEqual([later[1]?.supervisorId, later[0]?.supervisorId]);
      // A cursor only when another page follows: a full last page says null too.
      expect((await listSupervisors(db(), { limit: 4 })).next).toBe(listed[3]);
      expect((await listSupervisors(db(), { limit: 5 })).next).toBeNull();
      expect((await listSupervisors(db(), { limit: 6 })).next).toBeNull();
    });

    it('a finished supervisor\'s leftover questions are not listed as pending: nobody can answer them any more', async () => {
      const failed = fullSave({ state: 'failed', errorMessage: 'gave up', pendingQuestions: [question('q1')] });
      const asking = fullSave({ state: 'waiting_for_user', pendingQuestions: [question('q2')] });
      await saveSupervisorStateFull(db(), failed);
      await saveSupervisorStateFull(db(), asking);
      expect((await getSupervisorsWithPendingQuestions(db())).map((row) => row.supervisorId)).toEqual([asking.supervisorId]);
      expect((await listSupervisors(db(), { pendingQuestionsOnly: true })).supervisors.map((s) => s.id)).toEqual([asking.supervisorId]);
    });

    it('the heartbeat write touches only heartbeat, activity and progress, and appends no checkpoint', async () => {
      const input = fullSave();
      await saveSupervisorStateFull(db(), input);
      const before = await getSupervisorState(db(), input.supervisorId);
      const at = new Date('2026-11-24T12:34:56.000Z');
      expect(await updateSupervisorHeartbeatState(db(), input.supervisorId, { at, currentActivity: 'reading', progress: 55 })).toBe(true);
      const after = await getSupervisorState(db(), input.supervisorId);
      expect(after).toEqual({ ...before, lastHeartbeat: at.toISOString(), currentActivity: 'reading', progress: 55 });
      expect(await count('supervisor_checkpoints', input.supervisorId)).toBe(1);
      expect(await updateSupervisorHeartbeatState(db(), randomUUID())).toBe(false);
    });

    it('checkpoint listing is newest first and "newest checkpoint before N" walks back', async () => {
      const input = fullSave();
      for (let step = 1; step <= 4; step++) await saveSupervisorStateFull(db(), { ...input, step, reason: `r${step}` });
      expect((await listCheckpoints(db(), input.supervisorId, { limit: 2 })).map((c) => c.seq)).toEqual([4, 3]);
      expect((await getNewestCheckpointBefore(db(), input.supervisorId, 4))?.reason).toBe('r3');
      expect((await getNewestCheckpointBefore(db(), input.supervisorId, Number.POSITIVE_INFINITY))?.seq).toBe(4);
      expect(await getNewestCheckpointBefore(db(), input.supervisorId, 1)).toBeNull();
    });

    it("a save point's stored size does not grow with the conversation: history is appended in its own table", async () => {
      const input = fullSave();
      await saveSupervisorStateFull(db(), input);
      const size = async () =>
        Number((await sql<{ n: number }>`SELECT pg_column_size(c.snapshot) + pg_column_size(s.pending_questions) AS n
          FROM supervisor_states s JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq WHERE s.id = ${input.supervisorId}`.execute(db())).rows[0]?.n);
      let first = 0;
      for (let step = 2; step <= 51; step++) {
        const seq = step - 2;
        await saveSupervisorStateFull(db(), {
          ...input,
          step,
          conversationLength: seq + 1,
          snapshot: { ...(input.snapshot as object), conversationLength: seq + 1 },
          conversation: [{ seq, role: 'user', content: 'x'.repeat(500), at: '2026-11-24T10:00:00.000Z' }],
        });
        if (step === 2) first = await size();
      }
      expect((await getConversation(db(), input.supervisorId)).length).toBe(50);
      expect(first).toBeGreaterThan(0);
      expect(Math.abs((await size()) - first)).toBeLessThanOrEqual(2);
    });

    it('getSupervisorStateForRestoration returns the raw row, and null for an unknown id', async () => {
      const input = fullSave({ state: 'waiting_for_user', pendingQuestions: [question('q1')] });
      await saveSupervisorStateFull(db(), input);
      const raw = await getSupervisorStateForRestoration(db(), input.supervisorId);
      expect(raw).toMatchObject({ supervisorId: input.supervisorId, state: 'waiting_for_user', checkpointSeq: 1, machineVersion: 1, snapshot: input.snapshot });
      expect(await getSupervisorStateForRestoration(db(), randomUUID())).toBeNull();
      expect(await listRestorableSupervisorIds(db())).toEqual([input.supervisorId]);
    });

    describe('bad input', () => {
      it('an unknown state value is refused with a typed error naming the supervisor, and nothing is written', async () => {
        const input = fullSave();
        await saveSupervisorStateFull(db(), input);
        const error = await saveSupervisorStateFull(db(), { ...input, step: 2, state: 'sleeping' as SupervisorState }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidSupervisorDataError);
        expect((error as Error).message).toContain(input.supervisorId);
        await expect(saveSupervisorStateFull(db(), fullSave({ state: 'sleeping' as SupervisorState }))).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        expect((await getSupervisorState(db(), input.supervisorId))?.state).toBe('working');
      });

      it('an out-of-range progress is refused by the code and by the database CHECK', async () => {
        const input = fullSave();
        await saveSupervisorStateFull(db(), input);
        await expect(updateSupervisorHeartbeatState(db(), input.supervisorId, { progress: 140 })).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        await expect(saveSupervisorStateFull(db(), { ...input, step: 2, progress: -1 })).rejects.toThrow(/progress/);
        await expect(sql`UPDATE supervisor_states SET progress = 140 WHERE id = ${input.supervisorId}`.execute(db())).rejects.toThrow(/progress/);
        expect((await getSupervisorState(db(), input.supervisorId))?.progress).toBe(10);
        expect(await count('supervisor_checkpoints', input.supervisorId)).toBe(1);
      });

      it('a malformed pending question is refused before anything is written', async () => {
        const input = fullSave();
        await saveSupervisorStateFull(db(), input);
        const bad = { ...question('q1'), askedAt: 'yesterday' };
        await expect(saveSupervisorStateFull(db(), { ...input, step: 2, pendingQuestions: [bad] })).rejects.toBeInstanceOf(InvalidSupervisorDataError);
        expect((await getSupervisorState(db(), input.supervisorId))?.pendingQuestions).toEqual([]);
      });

      it('a row whose jsonb has the wrong shape reads as InvalidSnapshotError naming the supervisor; other rows still list', async () => {
        const good = fullSave();
        const corrupt = fullSave();
        await saveSupervisorStateFull(db(), good);
        await saveSupervisorStateFull(db(), corrupt);
        await sql`UPDATE supervisor_states SET pending_questions = '[{"id": 7}]'::jsonb WHERE id = ${corrupt.supervisorId}`.execute(db());
        const error = await getSupervisorState(db(), corrupt.supervisorId).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidSnapshotError);
        expect((error as Error).message).toContain(corrupt.supervisorId);
        expect((error as Error).message).toMatch(/pending_questions\[0\]\.id/);
        const listed = await listSupervisors(db());
        expect(listed.supervisors.map((s) => s.id)).toEqual([good.supervisorId]);
        expect(listed.invalid.map((e) => e.supervisorId)).toEqual([corrupt.supervisorId]);
        await expect(sql`UPDATE supervisor_states SET pending_questions = '{"not": "a list"}'::jsonb WHERE id = ${good.supervisorId}`.execute(db())).rejects.toThrow(
          /pending_questions_array/,
        );
      });

      it('a closed or unreachable database gives DatabaseUnavailableError that says what to check', async () => {
        const broken =
          target.name === 'postgres'
            ? await openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/test' })
            : await (async () => {
                const d = await openDatabase({ inMemory: true });
                await d.close();
                return d;
              })();
        const error = await getSupervisorState(broken.db, randomUUID()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DatabaseUnavailableError);
        expect((error as Error).message).toMatch(/DATABASE_URL|data folder/);
        expect((await broken.health()).ok).toBe(false);
        await broken.close().catch(() => undefined);
      });
    });
  });
}
