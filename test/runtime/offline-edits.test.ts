// The seed's per-field edits go through the machine and a save point: row and snapshot agree after every one, the
// next restore keeps what they changed, and a supervisor a live daemon runs refuses them.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { EventRefusedError, InvalidSupervisorDataError, SupervisorNotFoundError } from '../../src/domain/errors.js';
import { getOwner } from '../../src/persistence/ownership/claims.js';
import { getQuestion, getSupervisorState, getTask, listCheckpoints } from '../../src/persistence/supervisor-repository.js';
import { SupervisorRunningError } from '../../src/runtime/errors.js';
import {
  addSupervisorPendingQuestion,
  addSupervisorSpawnedTask,
  markSupervisorRestored,
  removeSupervisorPendingQuestion,
  updateSupervisorDetailedState,
  updateSupervisorPhase,
} from '../../src/runtime/offline-edits.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { question } from '../helpers/fixtures.js';

for (const target of await databaseTargets()) {
  describe(`per-field edits on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    /** A supervisor created by a daemon that then stopped (SIGTERM-style: it released ownership). */
    async function stoppedSupervisor(): Promise<string> {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const supervisor = await runtime.spawn({ name: 'offline' });
      await runtime.shutdown({ closeDatabase: false });
      return supervisor.id;
    }

    /** The row's columns and the snapshot of the checkpoint it points to say the same. */
    async function expectRowAndSnapshotAgree(id: string): Promise<void> {
      const row = await getSupervisorState(db(), id);
      const result = await sql<{ snapshot: { value: string; context: Record<string, unknown> } }>`
        SELECT c.snapshot FROM supervisor_states s JOIN supervisor_checkpoints c ON c.supervisor_id = s.id AND c.seq = s.checkpoint_seq WHERE s.id = ${id}`.execute(db());
      const snapshot = result.rows[0]!.snapshot;
      expect(row).not.toBeNull();
      expect(snapshot.value).toBe(row!.state);
      expect(snapshot.context).toMatchObject({
        phase: row!.phase,
        pendingQuestions: row!.pendingQuestions,
        restorationCount: row!.restorationCount,
        errorMessage: row!.errorMessage,
        currentActivity: row!.currentActivity,
        progress: row!.progress,
      });
      expect((snapshot.context.tasks as Array<{ id: string }>).map((task) => task.id)).toEqual(row!.spawnedTaskIds);
    }

    it('each edit is a transition and a save point: row and snapshot agree, and a restore keeps every change', async () => {
      const id = await stoppedSupervisor();

      expect(await updateSupervisorPhase(db(), id, 'implementation')).toBe(true);
      expect(await updateSupervisorPhase(db(), id, 'implementation')).toBe(true); // already so: nothing written
      await expectRowAndSnapshotAgree(id);

      expect(await addSupervisorPendingQuestion(db(), id, question('q1'))).toBe(true);
      expect(await addSupervisorPendingQuestion(db(), id, question('q1', { question: 'changed?' }))).toBe(false);
      expect(await addSupervisorPendingQuestion(db(), id, question('q2'))).toBe(true);
      await expectRowAndSnapshotAgree(id);
      expect((await getSupervisorState(db(), id))?.state).toBe('waiting_for_user');
      expect(await getQuestion(db(), id, 'q1')).toMatchObject({ question: question('q1').question, answer: null, withdrawnAt: null });
      // The question is delivered like one the daemon asked: its outbox row commits with the state.
      const outbox = await db().selectFrom('supervisor_outbox').select(['subject', 'payload']).where('supervisor_id', '=', id).execute();
      expect(outbox.filter((row) => row.subject.endsWith('.questions')).map((row) => (row.payload as { questionId: string }).questionId)).toEqual(['q1', 'q2']);

      expect(await removeSupervisorPendingQuestion(db(), id, 'q1', 'no longer relevant')).toBe(true);
      expect(await removeSupervisorPendingQuestion(db(), id, 'q1')).toBe(false);
      expect(await removeSupervisorPendingQuestion(db(), id, 'never-asked')).toBe(false);
      await expectRowAndSnapshotAgree(id);
      expect(await getQuestion(db(), id, 'q1')).toMatchObject({ answer: null, withdrawnReason: 'no longer relevant' });
      expect((await getQuestion(db(), id, 'q1'))?.withdrawnAt).toEqual(expect.any(String));
      // A withdrawn id is not asked again.
      expect(await addSupervisorPendingQuestion(db(), id, question('q1'))).toBe(false);

      expect(await addSupervisorSpawnedTask(db(), id, 'task-a', 'index the repo')).toBe(true);
      expect(await addSupervisorSpawnedTask(db(), id, 'task-a', 'index the repo')).toBe(false);
      await expectRowAndSnapshotAgree(id);
      expect(await getTask(db(), 'task-a')).toMatchObject({ supervisorId: id, status: 'running', description: 'index the repo' });

      expect(await updateSupervisorDetailedState(db(), id, { currentActivity: 'reading', progress: 40 })).toBe(true);
      await expectRowAndSnapshotAgree(id);

      const at = new Date('2026-12-01T12:00:00.000Z');
      expect(await markSupervisorRestored(db(), id, 'manual', at)).toEqual({ restorationCount: 1, lastRestoredAt: at.toISOString(), restorationSource: 'manual' });
      await expectRowAndSnapshotAgree(id);
      const reasons = (await listCheckpoints(db(), id, { limit: 100 })).map((checkpoint) => checkpoint.reason);
      expect(reasons.slice(0, 7)).toEqual(['restored', 'activity', 'task_spawned', 'question_withdrawn', 'question_asked', 'question_asked', 'phase_changed']);

      // A daemon restoring it sees every edit, and counts on from the mark (the seed's raw write was reverted here).
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      try {
        const info = await runtime.restore(id, 'manual');
        expect(info.recoveryAction).toBe('restore');
        const context = runtime.get(id)!.snapshot.context;
        expect(context).toMatchObject({ phase: 'implementation', restorationCount: 2, currentActivity: 'reading', progress: 40 });
        expect(context.pendingQuestions.map((pending) => pending.id)).toEqual(['q2']);
        expect(context.tasks.map((task) => task.id)).toEqual(['task-a']);
        // The withdrawn question takes no answer; the pending one does.
        await expect(runtime.answerQuestion(id, 'q1', 'late')).rejects.toThrow(/withdrawn/);
        await runtime.answerQuestion(id, 'q2', 'yes');
        expect(runtime.get(id)!.snapshot.context.answeredQuestionCount).toBe(1);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('state is set only through the events that reach it; an unknown id reads as missing', async () => {
      const id = await stoppedSupervisor();
      await expect(updateSupervisorDetailedState(db(), id, { state: 'working' })).rejects.toThrow(InvalidSupervisorDataError);
      await expect(updateSupervisorDetailedState(db(), id, { errorMessage: 'boom' })).rejects.toThrow(/pass it with state 'failed'/);
      await expect(updateSupervisorDetailedState(db(), id, {})).rejects.toThrow(/names no field/);
      expect(await updateSupervisorDetailedState(db(), id, { state: 'failed', errorMessage: 'boom', progress: 70 })).toBe(true);
      expect(await getSupervisorState(db(), id)).toMatchObject({ state: 'failed', errorMessage: 'boom', progress: 70 });
      await expectRowAndSnapshotAgree(id);
      // A failed supervisor takes no more work.
      await expect(updateSupervisorPhase(db(), id, 'again')).rejects.toBeInstanceOf(EventRefusedError);

      const unknown = '00000000-0000-4000-8000-000000000000';
      expect(await updateSupervisorPhase(db(), unknown, 'x')).toBe(false);
      expect(await addSupervisorSpawnedTask(db(), unknown, 'task-b')).toBe(false);
      expect(await addSupervisorPendingQuestion(db(), unknown, question('q9'))).toBe(false);
      expect(await removeSupervisorPendingQuestion(db(), unknown, 'q9')).toBe(false);
      expect(await updateSupervisorDetailedState(db(), unknown, { progress: 5 })).toBe(false);
      await expect(markSupervisorRestored(db(), unknown, 'manual')).rejects.toBeInstanceOf(SupervisorNotFoundError);
      await expect(addSupervisorPendingQuestion(db(), id, { ...question('q1'), askedAt: 'yesterday' })).rejects.toThrow(/askedAt/);
    });

    it('a supervisor a live daemon runs refuses them, naming the call that makes the change, and nothing is written', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      await runtime.start({ messaging: false });
      try {
        const supervisor = await runtime.spawn({ name: 'running' });
        expect((await getOwner(db(), supervisor.id))?.ownerLive).toBe(true);
        const before = await getSupervisorState(db(), supervisor.id);
        const error = await updateSupervisorPhase(db(), supervisor.id, 'elsewhere').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SupervisorRunningError);
        expect((error as SupervisorRunningError).owner).toBe(runtime.daemonId);
        expect((error as Error).message).toContain("runtime.send(id, { type: 'SET_PHASE', phase })");
        await expect(addSupervisorPendingQuestion(db(), supervisor.id, question('q1'))).rejects.toBeInstanceOf(SupervisorRunningError);
        await expect(markSupervisorRestored(db(), supervisor.id, 'manual')).rejects.toThrow(/POST \/supervisors\/.*\/resume/);
        expect(await getSupervisorState(db(), supervisor.id)).toEqual(before);
        // The running daemon's own path works, and its copy is still the writer.
        await runtime.withdrawQuestion(supervisor.id, 'nope').catch((e: unknown) => expect(e).toBeInstanceOf(EventRefusedError));
        await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'through-the-daemon' });
        expect((await getSupervisorState(db(), supervisor.id))?.phase).toBe('through-the-daemon');
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    it('an edit racing a daemon that claims the supervisor loses cleanly: one of them wins each step, nothing is torn', async () => {
      const id = await stoppedSupervisor();
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      await runtime.start({ messaging: false, restore: false });
      try {
        const [edited, info] = await Promise.allSettled([updateSupervisorPhase(db(), id, 'raced'), runtime.restore(id, 'manual')]);
        expect(info.status).toBe('fulfilled');
        // Either the edit committed before the claim (and the restore read it), or it met the claim and was refused.
        if (edited.status === 'fulfilled') {
          expect(edited.value).toBe(true);
          expect(runtime.get(id)!.snapshot.context.phase).toBe('raced');
        } else {
          expect(edited.reason).toBeInstanceOf(SupervisorRunningError);
          expect(runtime.get(id)!.snapshot.context.phase).toBe('planning');
        }
        await expectRowAndSnapshotAgree(id);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
