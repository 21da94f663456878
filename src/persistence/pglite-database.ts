// Embedded PGlite (Postgres in WebAssembly) in a locked data folder, in memory, or on an instance the caller shares.

import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NoEmbeddedDatabaseError } from '../domain/errors.js';
import { lockDataFolder, type DataFolderLock } from './data-folder-lock.js';
import { checkHealth } from './database-health.js';
import { channelName, DEFAULT_DATA_DIR, type Database, type DatabaseConfig } from './database.js';
import type { DatabaseSchema } from './schema.js';

export async function openPglite(config: DatabaseConfig): Promise<Database> {
  const schema = config.schema ?? null;
  let lock: DataFolderLock | null = null;
  let pglite: PGlite;
  let description: string;
  const shared = config.pglite;
  if (shared) {
    pglite = shared;
    description = 'PGlite (shared instance)';
  } else if (config.inMemory) {
    pglite = new PGlite();
    description = 'PGlite (in memory)';
  } else {
    const folder = resolve(config.dataDir ?? DEFAULT_DATA_DIR);
    // PGlite starts on a folder without PG_VERSION by running initdb there; a reader wants the database that is there.
    if (config.mustExist && !existsSync(join(folder, 'pgdata', 'PG_VERSION'))) throw new NoEmbeddedDatabaseError(folder);
    lock = lockDataFolder(folder);
    try {
      pglite = new PGlite(resolve(folder, 'pgdata'));
      await pglite.waitReady;
    } catch (error) {
      lock.release();
      throw error;
    }
    description = `PGlite (${folder})`;
  }
  await pglite.waitReady;
  if (schema) {
    // PGlite is one session, so search_path set once holds for every later query.
    await pglite.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";`);
  }
  const db = new Kysely<DatabaseSchema>({ dialect: new PGliteDialect(pglite) });
  let closed = false;
  return {
    kind: 'pglite',
    db,
    description: description + (schema ? ` (schema ${schema})` : ''),
    schema,
    // The PGlite dialect uses the extended protocol (one statement); exec() runs a script in the same single session,
    // so inside a Kysely transaction it is part of that transaction.
    executeScript: async (_executor, script) => {
      await pglite.exec(script);
    },
    health: (timeoutMs) => checkHealth(db, 'pglite', timeoutMs),
    listen: async (channel, onNotify) => {
      const unsubscribe = await pglite.listen(channel, onNotify);
      return async () => {
        if (!pglite.closed) await unsubscribe();
      };
    },
    notificationChannel: (name) => channelName(schema, name),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        // The dialect's destroy() closes the PGlite instance, which a shared one must survive.
        if (!shared) await db.destroy();
      } finally {
        if (!shared && !pglite.closed) await pglite.close();
        lock?.release();
      }
    },
  };
}
