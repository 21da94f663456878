import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFolderLockedError } from '../../src/domain/errors.js';
import { openDatabase } from '../../src/persistence/database.js';
import { databaseTargets, TEST_DATABASE_URL } from '../helpers/databases.js';
import { seedDataFolder } from '../helpers/pglite-template.js';
import { runBin } from '../helpers/processes.js';

describe('supervisor-runtime migrate on embedded PGlite', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sr-migrate-'));
  // The cluster initdb makes in an empty folder, from the template: creating it is PGlite's work and takes seconds (the
  // demo's test starts on an empty folder); what migrate does with a cluster that has no tables yet is tested here.
  beforeAll(() => seedDataFolder(dataDir));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  // Three processes, each starting PGlite (seconds apiece on a loaded 2-core machine).
  it('applies every file to a new data folder, then a second run applies none', { timeout: 120_000 }, async () => {
    const first = await runBin(['migrate'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' });
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/applied 20260201000001_enhanced_supervisor_state/);
    expect(first.stdout).toMatch(/Applied 14 migration\(s\)/);
    const second = await runBin(['migrate'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' });
    expect(second.stdout).toMatch(/Nothing to apply: 14 migrations already applied/);
    const status = await runBin(['migrate', '--status'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' });
    expect(status.stdout).toMatch(/Up to date/);
    expect(status.code).toBe(0);
  });

  it('a second process opening the same data folder fails at once with a clear error; the folder stays usable, and a lock left by a dead process is taken over', async () => {
    const holder = await openDatabase({ dataDir });
    try {
      const second = await runBin(['migrate'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' });
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`in use by process ${process.pid}.*SUPERVISOR_RUNTIME_DATA`));
      await expect(openDatabase({ dataDir })).rejects.toBeInstanceOf(DataFolderLockedError);
      expect((await holder.health()).ok).toBe(true);
    } finally {
      await holder.close();
    }
    // A lock left by a process that died (kill -9) is taken over.
    writeFileSync(join(dataDir, 'supervisor-runtime.lock'), '2147483646');
    const after = await runBin(['migrate'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' });
    expect(after.stderr).toBe('');
    expect(after.code).toBe(0);
  });

  it('a bad DATABASE_URL is named in the error', async () => {
    const result = await runBin(['migrate'], { DATABASE_URL: 'mysql://localhost/x' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Invalid setting DATABASE_URL: expected postgres:\/\/… or postgresql:\/\/…/);
  });
});

const targets = await databaseTargets();
if (targets.some((target) => target.name === 'postgres')) {
  describe('supervisor-runtime migrate on Postgres', () => {
    const name = `sr_migrate_${process.pid}_${Date.now()}`;
    const admin = () => new pg.Client({ connectionString: TEST_DATABASE_URL });
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    afterAll(async () => {
      const client = admin();
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    });

    it('two processes migrating an empty database at once apply each file exactly once; a third run applies none', async () => {
      const client = admin();
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      const env = { DATABASE_URL: url.toString() };
      const [a, b] = await Promise.all([runBin(['migrate'], env), runBin(['migrate'], env)]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const applied = [...a.stdout.matchAll(/^applied (\S+)$/gm), ...b.stdout.matchAll(/^applied (\S+)$/gm)].map((m) => m[1]).sort();
      expect(applied).toEqual([
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
      const third = await runBin(['migrate'], env);
      expect(third.stdout).toMatch(/Nothing to apply: 14 migrations already applied/);
      const check = new pg.Client({ connectionString: url.toString() });
      await check.connect();
      const columns = await check.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'supervisor_states'`);
      await check.end();
      expect(columns.rows.map((row: { column_name: string }) => row.column_name)).toEqual(
        expect.arrayContaining(['state', 'current_activity', 'progress', 'error_message', 'spawned_task_ids', 'pending_questions', 'restoration_count', 'last_restored_at', 'restoration_source']),
      );
    });

    it('SUPERVISOR_RUNTIME_DATABASE_SCHEMA migrates into that schema, creating it; a search_path naming a missing schema fails saying how to fix it', async () => {
      const schema = `sr_cli_schema_${process.pid}`;
      const missing = `sr_cli_missing_${process.pid}`;
      const client = admin();
      await client.connect();
      try {
        const migrated = await runBin(['migrate'], { DATABASE_URL: TEST_DATABASE_URL, SUPERVISOR_RUNTIME_DATABASE_SCHEMA: schema });
        expect(migrated.stderr).toBe('');
        expect(migrated.stdout).toMatch(/Applied 14 migration\(s\)/);
        const tables = await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [schema]);
        expect(tables.rows.map((row: { table_name: string }) => row.table_name)).toEqual(expect.arrayContaining(['supervisor_states', 'supervisor_checkpoints']));
        const bad = await runBin(['migrate'], { DATABASE_URL: TEST_DATABASE_URL, SUPERVISOR_RUNTIME_DATABASE_SCHEMA: 'Has-Caps' });
        expect(bad.code).toBe(1);
        expect(bad.stderr).toMatch(/Invalid setting SUPERVISOR_RUNTIME_DATABASE_SCHEMA: "Has-Caps" is not a schema name/);
        const withPath = new URL(TEST_DATABASE_URL);
        withPath.searchParams.set('options', `-c search_path=${missing}`);
        const lost = await runBin(['migrate'], { DATABASE_URL: withPath.toString() });
        expect(lost.code).toBe(1);
        expect(lost.stderr).toMatch(/search_path names no schema that exists.*CREATE SCHEMA.*SUPERVISOR_RUNTIME_DATABASE_SCHEMA/s);
      } finally {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      }
    });
  });
}
