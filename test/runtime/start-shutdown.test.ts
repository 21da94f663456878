// A shutdown that overlaps start() (SIGTERM while the daemon is still restoring) leaves nothing of the runtime running.

import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/persistence/database.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

for (const target of await databaseTargets()) {
  describe(`start() overlapped by shutdown() on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('shutdown while start() restores: start gives up with RuntimeStoppedError and no LISTEN (leases, inbox) stays open', async () => {
      const base = database();
      const open = new Map<string, number>();
      // The real database; only its LISTENs are counted, open and closed.
      const counted: Database = {
        ...base,
        listen: async (channel, onPayload) => {
          const unlisten = await base.listen(channel, onPayload);
          open.set(channel, (open.get(channel) ?? 0) + 1);
          return async () => {
            open.set(channel, (open.get(channel) ?? 0) - 1);
            await unlisten();
          };
        },
      };
      const seeding = createRuntime({ database: base, heartbeatIntervalMs: 0, logger: silentLogger });
      await Promise.all(Array.from({ length: 20 }, (_, n) => seeding.spawn({ name: `restored ${n}` })));
      await seeding.shutdown({ closeDatabase: false });

      const runtime = createRuntime({ database: counted, heartbeatIntervalMs: 0, logger: silentLogger });
      const starting = runtime.start({ messaging: false });
      // SIGTERM as soon as start() is under way (its leases LISTEN is open, its restore-all begins).
      for (let attempt = 0; attempt < 5_000 && (open.get(base.notificationChannel('leases')) ?? 0) === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 1));
      const [started, stopped] = await Promise.allSettled([starting, runtime.shutdown({ closeDatabase: false })]);
      expect(stopped.status).toBe('fulfilled');
      if (started.status === 'rejected') expect((started.reason as Error).name).toBe('RuntimeStoppedError');
      expect(Object.fromEntries(open)).toEqual(Object.fromEntries([...open.keys()].map((channel) => [channel, 0])));
      expect(open.get(base.notificationChannel('inbox')) ?? 0).toBe(0);
    });
  });
}
