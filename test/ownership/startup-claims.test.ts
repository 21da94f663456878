// Start-up claims in batches, in one process on every database: the next batch is claimed while one restores and
// starts restoring before it is done, and every batch a claim returned reaches the restorer, even when a restore
// fails, so nothing is left owned here and running nowhere.

import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import { claimSupervisors, type ClaimedSupervisor } from '../../src/persistence/ownership/claims.js';
import { saveSupervisorStateFull } from '../../src/persistence/supervisor-repository.js';
import { createLeaseKeeper, DEFAULT_LEASE_SETTINGS, type LeaseKeeper } from '../../src/runtime/lease-keeper.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { fullSave } from '../helpers/fixtures.js';

for (const target of await databaseTargets()) {
  describe(`start-up claims on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    /** `count` unowned supervisors, as a released daemon leaves them. */
    async function unowned(count: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const input = fullSave();
        await saveSupervisorStateFull(db(), input);
        ids.push(input.supervisorId);
      }
      return ids;
    }

    /** A joined keeper named "claimer" that runs nothing; `host`, `settings` and `internals` override the defaults. */
    async function joinedKeeper(
      host: Partial<Parameters<typeof createLeaseKeeper>[0]> = {},
      settings: Partial<Parameters<typeof createLeaseKeeper>[1]> = {},
      internals: Parameters<typeof createLeaseKeeper>[2] = {},
    ): Promise<LeaseKeeper> {
      const keeper = createLeaseKeeper(
        {
          database: database(),
          logger: silentLogger,
          daemonId: 'claimer',
          held: () => [],
          busy: () => false,
          dropLost: async () => undefined,
          restoreClaimed: async () => undefined,
          retryStranded: async () => undefined,
          ...host,
        },
        { ...DEFAULT_LEASE_SETTINGS, url: null, ...settings },
        internals,
      );
      await keeper.join();
      return keeper;
    }

    /** `count` unowned supervisors and a joined keeper claiming 2 at a time at start-up. */
    async function setUp(count: number): Promise<{ ids: string[]; keeper: LeaseKeeper }> {
      const ids = await unowned(count);
      return { ids, keeper: await joinedKeeper({}, { startupClaimBatchSize: 2 }) };
    }

    const ownedBy = async (owner: string) =>
      (await db().selectFrom('supervisor_states').select('id').where('owner', '=', owner).execute()).map((row) => row.id).sort();

    it('claims the next batch while the current one restores, starts restoring it before that one is done, and hands every claimed supervisor over exactly once', async () => {
      const { ids, keeper } = await setUp(5);
      const handed: string[][] = [];
      const whileFirstRestored: Array<{ owned: number; batches: number }> = [];
      await keeper.claimAtStartup(async (claims: Array<{ claim: ClaimedSupervisor }>) => {
        handed.push(claims.map((entry) => entry.claim.supervisorId));
        if (handed.length === 1) {
          // The first batch is still restoring: the second one is claimed and handed over meanwhile.
          for (let attempt = 0; attempt < 500 && handed.length < 2; attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
          whileFirstRestored.push({ owned: (await ownedBy('claimer')).length, batches: handed.length });
        }
      });
      expect(handed.map((batch) => batch.length)).toEqual([2, 2, 1]);
      expect(handed.flat().sort()).toEqual([...ids].sort());
      expect(whileFirstRestored[0]?.batches).toBe(2);
      expect(whileFirstRestored[0]?.owned).toBeGreaterThanOrEqual(4);
      expect(await ownedBy('claimer')).toEqual([...ids].sort());
      await keeper.release();
    });

    it('a claim round whose statement committed but whose reply was lost: the next round restores what it left owned here, each at its epoch', async () => {
      const ids = await unowned(3);
      const handed: Array<{ supervisorId: string; epoch: number }> = [];
      let lose = true;
      const keeper = await joinedKeeper(
        { restoreClaimed: async (claims) => void handed.push(...claims.map((entry) => ({ supervisorId: entry.claim.supervisorId, epoch: entry.claim.epoch }))) },
        { renewIntervalMs: 50 },
        {
          // The real statement commits; its caller hears the connection die, as after a reset between COMMIT and reply.
          claim: async (...args: Parameters<typeof claimSupervisors>) => {
            const claimed = await claimSupervisors(...args);
            if (lose && claimed.length > 0) {
              lose = false;
              throw new DatabaseUnavailableError('claimSupervisors', undefined, new Error('Connection terminated unexpectedly'), 'unknown');
            }
            return claimed;
          },
        },
      );
      keeper.startRounds();
      for (let attempt = 0; attempt < 1_000 && handed.length < ids.length; attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
      await keeper.release();
      expect(lose).toBe(false);
      expect(handed.map((entry) => entry.supervisorId).sort()).toEqual([...ids].sort());
      const rows = await db().selectFrom('supervisor_states').select(['id', 'epoch']).where('id', 'in', ids).execute();
      expect(new Map(handed.map((entry) => [entry.supervisorId, entry.epoch]))).toEqual(new Map(rows.map((row) => [row.id, Number(row.epoch)])));
    });

    it('a restore that fails still gets the batch claimed meanwhile restored, and claims nothing more', async () => {
      const { ids, keeper } = await setUp(5);
      const handed: string[][] = [];
      const failure = new Error('restore failed');
      await expect(
        keeper.claimAtStartup(async (claims: Array<{ claim: ClaimedSupervisor }>) => {
          handed.push(claims.map((entry) => entry.claim.supervisorId));
          if (handed.length === 1) throw failure;
        }),
      ).rejects.toBe(failure);
      // Both claimed batches reached the restorer; the fifth supervisor was never claimed, so another round takes it.
      expect(handed.map((batch) => batch.length)).toEqual([2, 2]);
      const owned = await ownedBy('claimer');
      expect(owned).toEqual(handed.flat().sort());
      expect(ids.filter((id) => !owned.includes(id))).toHaveLength(1);
      await keeper.release();
    });
  });
}
