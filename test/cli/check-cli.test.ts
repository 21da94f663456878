import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/persistence/database.js';
import { lockDataFolder } from '../../src/persistence/data-folder-lock.js';
import { migrateOrThrow } from '../../src/persistence/migrator.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { seedDataFolder } from '../helpers/pglite-template.js';
import { runCliHere } from '../helpers/processes.js';

describe('supervisor-runtime check on an embedded data folder', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sr-check-'));
  const env = { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '' };
  beforeAll(() => seedDataFolder(dataDir));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('before migrations it says to migrate; then it prints each verdict, exits 0 while all restore as stored and 1 once one would not', { timeout: 120_000 }, async () => {
    const unmigrated = await runCliHere(['check'], env);
    expect(unmigrated.code).toBe(1);
    expect(unmigrated.stderr).toMatch(/lacks 14 migration\(s\) this version needs .*run `supervisor-runtime migrate` first/);

    const database = await openDatabase({ dataDir });
    let ids: string[];
    try {
      await migrateOrThrow(database);
      const runtime = createRuntime({ database, heartbeatIntervalMs: 0 });
      const good = await runtime.spawn({ name: 'good' });
      const bad = await runtime.spawn({ name: 'bad' });
      await runtime.askQuestion(bad.id, { question: 'Go?' });
      await runtime.shutdown({ closeDatabase: false });
      ids = [good.id, bad.id];
    } finally {
      await database.close();
    }
    const clean = await runCliHere(['check'], env);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/2 checked: 2 restore as stored, 0 from a checkpoint, 0 would start fresh, 0 not found/);

    const again = await openDatabase({ dataDir });
    try {
      await sql`UPDATE supervisor_states SET state = 'waiting_for_user', pending_questions = '[]' WHERE id = ${ids[1] as string}`.execute(again.db);
    } finally {
      await again.close();
    }
    const broken = await runCliHere(['check'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(new RegExp(`${ids[1]}  bad .* \\(lease ended\\)  from checkpoint #\\d+`));
    expect(broken.stdout).toMatch(/error: pending_questions differ from the snapshot's pending questions/);
    expect(broken.stdout).toMatch(/2 checked: 1 restore as stored, 1 from a checkpoint/);

    const json = await runCliHere(['check', ids[0] as string, '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ checked: 1, restore: 1, supervisors: [{ supervisorId: ids[0], name: 'good', verdict: 'restore' }] });
  });

  it('a folder a running process holds is refused, pointing at `check --url` (the way to check a running daemon)', async () => {
    const held = lockDataFolder(dataDir);
    try {
      const locked = await runCliHere(['check'], { ...env, SUPERVISOR_RUNTIME_URL: 'http://127.0.0.1:7999' });
      expect(locked.code).toBe(1);
      expect(locked.stdout).toBe('');
      expect(locked.stderr).toMatch(new RegExp(`in use by process ${process.pid}, a running daemon most likely: check a running daemon through its API with \`supervisor-runtime check --url http://127\\.0\\.0\\.1:7999\``));
    } finally {
      held.release();
    }
  });
});

describe('supervisor-runtime check where there is no database', () => {
  const parent = mkdtempSync(join(tmpdir(), 'sr-check-none-'));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('creates nothing (no folder, no initdb) and says what to point it at, for a missing folder and an empty one', async () => {
    const missing = join(parent, 'never-made');
    const empty = mkdtempSync(join(parent, 'empty-'));
    for (const dataDir of [missing, empty]) {
      const refused = await runCliHere(['check'], { SUPERVISOR_RUNTIME_DATA: dataDir, DATABASE_URL: '', SUPERVISOR_RUNTIME_URL: '' });
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toBe(
        `There is no database at ${dataDir}, and check created none (it changes nothing). Point it at the database to check: ` +
          "--data-dir with the daemon's data folder, --database-url with its Postgres, or --url http://127.0.0.1:7077 to ask a running daemon.\n",
      );
    }
    expect(existsSync(missing)).toBe(false);
    expect(readdirSync(empty)).toEqual([]);
  });
});
