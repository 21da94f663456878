import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/persistence/database.js';
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
});
