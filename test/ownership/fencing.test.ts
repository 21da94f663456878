// Fencing and leases inside one process, on every database: a write that names a stale owner or epoch is refused and
// writes nothing, a stale owner's heartbeats never overwrite the owner's acknowledged writes, claims are exclusive and
// labelled by what happened, and a daemon id is held by one live process at a time.

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { claimSupervisors } from '../../src/persistence/ownership/claims.js';
import { DaemonIdInUseError, OwnershipLostError } from '../../src/persistence/ownership/errors.js';
import { joinMembership } from '../../src/persistence/ownership/memberships.js';
import { getSupervisorState, listCheckpoints, saveSupervisorStatesFull, updateSupervisorHeartbeatState } from '../../src/persistence/supervisor-repository.js';
import { updateSupervisorDetailedState } from '../../src/runtime/offline-edits.js';
import { fullSave } from '../helpers/fixtures.js';
import { processIdentity } from '../../src/runtime/lease-keeper.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { storedFootprint, useRuntimes } from '../runtime/runtime-fixtures.js';

/** Lease settings that never expire or renew during a test unless the test makes time pass. */
const SLOW_LEASES = { ttlMs: 600_000, renewIntervalMs: 200_000 };

for (const target of await databaseTargets()) {
  describe(`fencing and leases on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const runtimeOn = useRuntimes(database);
    const db = () => database().db;
    /** As if the daemon had been frozen past its lease: its membership row says the lease ran out. */
    const expireLease = (daemonId: string) => sql`UPDATE supervisor_daemons SET lease_expires_at = clock_timestamp() WHERE id = ${daemonId}`.execute(db());

    it('a supervisor is created owned by its daemon at epoch 1, and a claim by another daemon bumps the epoch', async () => {
      const first = runtimeOn({ daemonId: 'first', leases: SLOW_LEASES });
      const supervisor = await first.spawn({ name: 'owned' });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'first', epoch: 1 });
      // The second daemon is running when the first one's lease runs out: what it claims then is a reassignment.
      const second = runtimeOn({ daemonId: 'second', leases: SLOW_LEASES });
      await second.start({ restore: false, messaging: false });
      await expireLease('first');
      const summary = await second.restoreAll();
      expect(summary).toMatchObject({ total: 1, restored: 1, failed: [] });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'second', epoch: 2, restorationSource: 'reassignment' });
    });

    it('a full save and a heartbeat from the old owner are refused with OwnershipLostError and write nothing; its copy stops without a reload', async () => {
      const stale = runtimeOn({ daemonId: 'stale', leases: SLOW_LEASES });
      const supervisor = await stale.spawn({ name: 'contested' });
      await expireLease('stale');
      const owner = runtimeOn({ daemonId: 'owner', leases: SLOW_LEASES });
      await owner.restoreAll();
      const before = await storedFootprint(db(), supervisor.id);

      await expect(stale.send(supervisor.id, { type: 'SET_PHASE', phase: 'stale-phase' })).rejects.toBeInstanceOf(OwnershipLostError);
      expect(await storedFootprint(db(), supervisor.id)).toEqual(before);
      // Stopped at once: later events are refused without touching the database (naming the owner), and no
      // restoration was counted anywhere.
      await expect.poll(() => stale.get(supervisor.id)).toBeUndefined();
      await expect(stale.send(supervisor.id, { type: 'HEARTBEAT' })).rejects.toMatchObject({ name: 'SupervisorOwnedElsewhereError', owner: 'owner' });
      expect(await storedFootprint(db(), supervisor.id)).toEqual(before);
      expect(owner.get(supervisor.id)?.snapshot.context.restorationCount).toBe(1);
    });

    it('heartbeats from a stale owner never overwrite the owner\'s acknowledged writes (6 of 6)', async () => {
      const stale = runtimeOn({ daemonId: 'stale-beats', leases: SLOW_LEASES });
      const ids: string[] = [];
      for (let n = 0; n < 6; n++) ids.push((await stale.spawn({ name: `beating ${n}` })).id);
      await expireLease('stale-beats');
      const owner = runtimeOn({ daemonId: 'owner-beats', leases: SLOW_LEASES });
      await owner.restoreAll();
      for (const id of ids) {
        // Acknowledged by the owner: activity and progress 42.
        await owner.send(id, { type: 'SET_ACTIVITY', activity: 'owner is working', progress: 42 });
        await owner.send(id, { type: 'HEARTBEAT' });
        const acknowledged = await getSupervisorState(db(), id);
        // The stale copy's heartbeat timer fires: the write is fenced out.
        await expect(stale.send(id, { type: 'SET_ACTIVITY', activity: 'stale activity', progress: 7 })).rejects.toBeInstanceOf(OwnershipLostError);
        // The raw heartbeat write with the stale fence is refused the same way.
        await expect(updateSupervisorHeartbeatState(db(), id, { progress: 7, fence: { owner: 'stale-beats', epoch: 1 } })).rejects.toBeInstanceOf(OwnershipLostError);
        expect(await getSupervisorState(db(), id)).toEqual(acknowledged);
        expect(acknowledged).toMatchObject({ currentActivity: 'owner is working', progress: 42, owner: 'owner-beats', epoch: 2 });
      }
    });

    it('an edit outside any daemon takes the supervisor from an owner whose lease ended: that owner\'s heartbeats no longer land, and the next claim restores the edit', async () => {
      const lapsed = runtimeOn({ daemonId: 'lapsed-editee', leases: SLOW_LEASES });
      const supervisor = await lapsed.spawn({ name: 'edited while its daemon hung' });
      await lapsed.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'old activity', progress: 5 });
      await expireLease('lapsed-editee');
      expect(await updateSupervisorDetailedState(db(), supervisor.id, { currentActivity: 'edited offline', progress: 77 })).toBe(true);
      const edited = await getSupervisorState(db(), supervisor.id);
      expect(edited).toMatchObject({ currentActivity: 'edited offline', progress: 77, owner: null, epoch: 2 });

      // The paused daemon wakes up and beats: fenced out, the edit stays, and row and snapshot still agree.
      await expect(lapsed.send(supervisor.id, { type: 'HEARTBEAT' })).rejects.toBeInstanceOf(OwnershipLostError);
      await expect(lapsed.send(supervisor.id, { type: 'SET_ACTIVITY', activity: 'stale activity', progress: 6 })).rejects.toMatchObject({ name: 'SupervisorNotRunningError' });
      expect(await getSupervisorState(db(), supervisor.id)).toEqual(edited);
      const [newest] = await listCheckpoints(db(), supervisor.id, { limit: 1 });
      expect((newest?.snapshot as { context: Record<string, unknown> }).context).toMatchObject({ currentActivity: 'edited offline', progress: 77 });

      const next = runtimeOn({ daemonId: 'next-owner', leases: SLOW_LEASES });
      await next.restoreAll();
      expect(next.get(supervisor.id)?.snapshot.context).toMatchObject({ currentActivity: 'edited offline', progress: 77 });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'next-owner', epoch: 3 });
    });

    it('the raw heartbeat write (no fence) lands only on a row no daemon owns; on a running supervisor it is refused naming the owner', async () => {
      const live = runtimeOn({ daemonId: 'live-owner', leases: SLOW_LEASES });
      const running = await live.spawn({ name: 'running here' });
      const before = await getSupervisorState(db(), running.id);
      await expect(updateSupervisorHeartbeatState(db(), running.id, { currentActivity: 'raw', progress: 99 })).rejects.toMatchObject({
        name: 'OwnershipLostError',
        current: { owner: 'live-owner', epoch: 1 },
      });
      expect(await getSupervisorState(db(), running.id)).toEqual(before);

      const unowned = fullSave({ name: 'nobody runs it' });
      const [saved] = await saveSupervisorStatesFull(db(), [unowned]);
      expect(saved?.ok).toBe(true);
      expect(await updateSupervisorHeartbeatState(db(), unowned.supervisorId, { currentActivity: 'raw', progress: 99 })).toBe(true);
      expect(await getSupervisorState(db(), unowned.supervisorId)).toMatchObject({ owner: null, currentActivity: 'raw', progress: 99 });
    });

    it('a supervisor id in capitals is the same supervisor: the save commits and says so, and the runtime keeps the lowercase form', async () => {
      const upper = randomUUID().toUpperCase();
      const [saved] = await saveSupervisorStatesFull(db(), [fullSave({ supervisorId: upper, name: 'capitals' })]);
      expect(saved).toEqual({ ok: true, result: { checkpointSeq: 1 } });
      // A second save at the same step is refused as stale (not mistaken for a write that happened).
      const [again] = await saveSupervisorStatesFull(db(), [fullSave({ supervisorId: upper, name: 'capitals' })]);
      expect(again).toMatchObject({ ok: false, error: { name: 'StaleWriteError' } });
      expect(await getSupervisorState(db(), upper.toLowerCase())).toMatchObject({ name: 'capitals', step: 1 });

      const runtime = runtimeOn({ daemonId: 'capitals', leases: SLOW_LEASES });
      const id = randomUUID().toUpperCase();
      const spawned = await runtime.spawn({ id, name: 'spawned in capitals' });
      expect(spawned.id).toBe(id.toLowerCase());
      expect(runtime.get(id.toLowerCase())?.state).toBe('idle');
      expect(await getSupervisorState(db(), id.toLowerCase())).toMatchObject({ name: 'spawned in capitals', owner: 'capitals' });
      await expect(runtime.spawn({ id, name: 'the same id again' })).rejects.toMatchObject({ name: 'InvalidSupervisorDataError' });
    });

    it('two daemons claiming at the same moment take disjoint batches, and every supervisor ends owned by exactly one', async () => {
      const creator = createRuntime({ database: database(), heartbeatIntervalMs: 0, daemonId: 'creator', leases: SLOW_LEASES });
      const ids: string[] = [];
      for (let n = 0; n < 60; n++) ids.push((await creator.spawn({ name: `pool ${n}` })).id);
      await creator.shutdown({ closeDatabase: false });
      const identity = processIdentity();
      for (const daemonId of ['claimer-a', 'claimer-b']) {
        await joinMembership(db(), { daemonId, incarnation: randomUUID(), url: null, ttlMs: 600_000, process: identity });
      }
      const rounds = await Promise.all(['claimer-a', 'claimer-b'].flatMap((daemonId) => [1, 2, 3].map(() => claimSupervisors(db(), { daemonId, limit: 15 }))));
      const claimed = rounds.flat();
      expect(new Set(claimed.map((claim) => claim.supervisorId)).size).toBe(claimed.length);
      const owners = await sql<{ owner: string; n: string }>`SELECT owner, count(*) AS n FROM supervisor_states GROUP BY owner`.execute(db());
      expect(owners.rows.reduce((sum, row) => sum + Number(row.n), 0)).toBe(60);
      expect(owners.rows.every((row) => row.owner === 'claimer-a' || row.owner === 'claimer-b')).toBe(true);
      expect(claimed.every((claim) => claim.epoch === 2 && claim.previousOwner === 'creator')).toBe(true);
    });

    it('start() and a second restoreAll never take this daemon\'s own running supervisors away from it', async () => {
      const runtime = runtimeOn({ daemonId: 'keeps-its-own', leases: SLOW_LEASES });
      const supervisor = await runtime.spawn({ name: 'mine' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Still mine?' });
      await runtime.start({ messaging: false });
      const again = await runtime.restoreAll();
      expect(again.total).toBe(0);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'keeps-its-own', epoch: 1, restorationCount: 0 });
      expect((await getSupervisorState(db(), supervisor.id))?.pendingQuestions).toEqual([expect.objectContaining({ id: questionId, deliveryCount: 1 })]);
      expect(runtime.get(supervisor.id)).toBe(supervisor);
    });

    it('a restore that fails because the database is away stays with this daemon and is retried at the next lease round until it runs', async () => {
      const first = runtimeOn({ daemonId: 'before-outage', leases: SLOW_LEASES });
      const supervisor = await first.spawn({ name: 'stranded' });
      await first.shutdown({ closeDatabase: false });
      // The restoration's save point meets "connection lost" (SQLSTATE 08006) while the flag is up.
      await sql`CREATE TABLE outage (up boolean NOT NULL)`.execute(db());
      await sql`INSERT INTO outage VALUES (true)`.execute(db());
      await sql`CREATE FUNCTION fail_while_out() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.reason = 'restored' AND (SELECT up FROM outage) THEN RAISE EXCEPTION 'injected: connection lost' USING ERRCODE = '08006'; END IF;
          RETURN NEW;
        END $$`.execute(db());
      await sql`CREATE TRIGGER fail_while_out BEFORE INSERT ON supervisor_checkpoints FOR EACH ROW EXECUTE FUNCTION fail_while_out()`.execute(db());
      const second = runtimeOn({ daemonId: 'after-outage', leases: { ttlMs: 30_000, renewIntervalMs: 200 }, saveRetry: { attempts: 1, baseDelayMs: 5 } });
      const summary = await second.start({ messaging: false });
      expect(summary.failed.map((failure) => failure.supervisorId)).toEqual([supervisor.id]);
      expect(second.get(supervisor.id)).toBeUndefined();
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'after-outage', restorationCount: 0 });

      await sql`UPDATE outage SET up = false`.execute(db());
      await expect.poll(async () => (await getSupervisorState(db(), supervisor.id))?.restorationCount, { timeout: 10_000 }).toBe(1);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'after-outage', state: 'idle', restorationSource: 'daemon_restart' });
      expect(second.get(supervisor.id)?.state).toBe('idle');
    });

    it('a daemon id is held by one live process: a second runtime with it waits, then fails with DaemonIdInUseError naming the setting', async () => {
      const holder = runtimeOn({ daemonId: 'shared-id', leases: { ttlMs: 2_000, renewIntervalMs: 500 } });
      await holder.spawn({ name: 'holds the id' });
      const intruder = runtimeOn({ daemonId: 'shared-id', leases: { ttlMs: 2_000, renewIntervalMs: 500 } });
      const error = await intruder.spawn({ name: 'never' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DaemonIdInUseError);
      expect((error as Error).message).toMatch(/SUPERVISOR_RUNTIME_DAEMON_ID/);
    }, 20_000);

    it('a restart under the same daemon id takes its previous run\'s supervisors back as a daemon restart, at a new epoch', async () => {
      const before = runtimeOn({ daemonId: 'stable-id', leases: SLOW_LEASES });
      const supervisor = await before.spawn({ name: 'comes back' });
      await before.shutdown({ closeDatabase: false });
      const after = runtimeOn({ daemonId: 'stable-id', leases: SLOW_LEASES });
      const summary = await after.restoreAll();
      expect(summary.results.map((info) => [info.supervisorId, info.source])).toEqual([[supervisor.id, 'daemon_restart']]);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'stable-id', epoch: 2, restorationSource: 'daemon_restart' });
    });

    it('a request for a supervisor another live daemon runs is refused naming that daemon and its URL', async () => {
      const owner = runtimeOn({ daemonId: 'the-owner', leases: SLOW_LEASES });
      const supervisor = await owner.spawn({ name: 'elsewhere' });
      await owner.advertise('http://127.0.0.1:7999');
      const other = runtimeOn({ daemonId: 'the-other', leases: SLOW_LEASES });
      await expect(other.send(supervisor.id, { type: 'SET_PHASE', phase: 'x' })).rejects.toMatchObject({
        name: 'SupervisorOwnedElsewhereError',
        owner: 'the-owner',
        ownerUrl: 'http://127.0.0.1:7999',
      });
      await expect(other.resume(supervisor.id)).rejects.toMatchObject({ name: 'SupervisorOwnedElsewhereError', owner: 'the-owner' });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ owner: 'the-owner', epoch: 1 });
    });
  });
}
