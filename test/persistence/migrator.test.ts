import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest, migrationStatus, MigrationError, type Migration, type MigrationProvider } from '../../src/persistence/migrator.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

const provider = (migrations: Migration[]): MigrationProvider => ({ getMigrations: async () => migrations });

for (const target of await databaseTargets()) {
  describe(`migrator on ${target.name}`, () => {
    const database = useIsolatedDatabase(target, { migrate: false });

    it('applies every file in name order once; a second run applies none', async () => {
      const first = await migrateToLatest(database());
      expect(first.error).toBeUndefined();
      expect(first.applied).toEqual([
        '20260101000000_base',
        '20260201000001_enhanced_supervisor_state',
        '20260201000002_checkpoints_and_conversation',
        '20260201000003_outbox',
        '20260201000004_restoration_support',
        '20261201000001_ownership',
        '20261202000001_bounded_state',
        '20261202000002_withdrawn_questions',
        '20261202000003_dead_letters',
        '20261202000004_checkpoint_lz4',
        '20261203000001_task_ids_per_supervisor',
        '20261204000001_task_outcome_applied',
        '20261204000002_forks',
        '20261204000003_messages',
      ]);
      const second = await migrateToLatest(database());
      expect(second.applied).toEqual([]);
      expect(second.alreadyApplied).toEqual(first.applied);
      expect((await migrationStatus(database())).every((migration) => migration.appliedAt instanceof Date)).toBe(true);
      // Checkpoint snapshots: lz4 where the server has it (Postgres here); PGlite is built without it and keeps pglz.
      const compression = await sql<{ method: string }>`
        SELECT attcompression AS method FROM pg_attribute
        WHERE attrelid = 'supervisor_checkpoints'::regclass AND attname = 'snapshot'`.execute(database().db);
      expect(compression.rows[0]?.method).toBe(target.name === 'postgres' ? 'l' : '');
    });

    it('a failing migration applies nothing, not even the files before it, and says which file failed', async () => {
      const result = await migrateToLatest(
        database(),
        provider([
          { name: '001_ok', sql: 'CREATE TABLE ok_table (id int);' },
          { name: '002_broken', sql: 'CREATE TABLE broken (id int; -- missing paren' },
        ]),
      );
      expect(result.applied).toEqual([]);
      expect(result.error).toBeInstanceOf(MigrationError);
      expect(result.error?.migration).toBe('002_broken');
      expect(result.error?.message).toMatch(/Nothing was applied/);
      const exists = await sql<{ found: string | null }>`SELECT to_regclass('ok_table') AS found`.execute(database().db);
      expect(exists.rows[0]?.found).toBeNull();
    });

    it('a new file that sorts before an applied one is refused with an error that says to rename it', async () => {
      await migrateToLatest(database(), provider([{ name: '001_a', sql: 'SELECT 1;' }, { name: '003_c', sql: 'SELECT 1;' }]));
      const result = await migrateToLatest(
        database(),
        provider([{ name: '001_a', sql: 'SELECT 1;' }, { name: '002_b', sql: 'SELECT 1;' }, { name: '003_c', sql: 'SELECT 1;' }]),
      );
      expect(result.error?.message).toMatch(/002_b is new but sorts before 003_c.*rename the file/);
      expect(result.applied).toEqual([]);
    });

    it('concurrent migrations on one database apply each file exactly once', async () => {
      const results = await Promise.all([migrateToLatest(database()), migrateToLatest(database()), migrateToLatest(database())]);
      expect(results.map((result) => result.error)).toEqual([undefined, undefined, undefined]);
      expect(results.flatMap((result) => result.applied).sort()).toEqual((await migrationStatus(database())).map((m) => m.name));
    });
  });
}
