// After a failed claim, the next lease round restores the unfinished supervisors this daemon owns and runs nowhere. A
// spawn whose first save committed but whose reply was lost (the same connection blip) is such a row while its save
// retries: the sweep must leave it to the spawn (which then runs it), not restore it under its feet.
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { connectionReset, isSingleFullSaveReply } from '../helpers/connection-faults.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

class Blip implements KyselyPlugin {
  failNextClaim = false;
  loseNextSaveReply = false;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (this.failNextClaim && JSON.stringify(args.node).includes('sr:claim_supervisors')) {
      this.failNextClaim = false;
      throw connectionReset();
    }
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.loseNextSaveReply && isSingleFullSaveReply(args.result)) {
      this.loseNextSaveReply = false;
      throw connectionReset();
    }
    return args.result;
  }
}

// Postgres only: the reply is lost on one of several connections while lease rounds run on others.
const postgres = (await databaseTargets()).find((candidate) => candidate.name === 'postgres');
(postgres ? describe : describe.skip)('orphan sweep vs a spawn on postgres', () => {
    const database = useIsolatedDatabase(postgres ?? { name: 'pglite', url: undefined });
    it('a spawn whose save reply was lost is not restored under it by the sweep', async () => {
      const plugin = new Blip();
      const handle = { ...database(), db: database().db.withPlugin(plugin) };
      // Saves retry slowly, so lease rounds (every 100 ms) run while the spawn's save waits for its retry.
      const runtime = createRuntime({ database: handle, heartbeatIntervalMs: 0, saveRetry: { attempts: 3, baseDelayMs: 600 }, leases: { renewIntervalMs: 100 } });
      try {
        await runtime.start({ messaging: false });
        plugin.failNextClaim = true;
        while (plugin.failNextClaim) await new Promise((resolve) => setTimeout(resolve, 5));
        plugin.loseNextSaveReply = true;
        const spawned = await runtime.spawn({ name: 'blip' }).then(
          (supervisor) => ({ ok: true as const, supervisor }),
          (error: unknown) => ({ ok: false as const, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
        );
        expect(spawned.ok, spawned.ok ? '' : spawned.error).toBe(true);
        if (spawned.ok) {
          expect(spawned.supervisor.snapshot.context.restorationCount, 'a fresh spawn restored by the sweep').toBe(0);
          expect(runtime.get(spawned.supervisor.id), 'the spawn returned the supervisor that runs here').toBe(spawned.supervisor);
        }
      } finally {
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
