// WAL written per save point (Postgres only): the server's WAL position before and after N full save points of one
// supervisor, against N raw jsonb UPSERTs of the same persisted snapshot. Server-wide, so run it on a quiet server.

import { sql } from 'kysely';
import type pg from 'pg';
import { supervisorMachine } from '../src/machines/supervisor-machine.js';
import type { Database } from '../src/persistence/database.js';
import { saveSupervisorStateFull } from '../src/persistence/supervisor-repository.js';
import { fullSaveFor, realisticSnapshot } from './save-points.js';

export interface WalFigures {
  saves: number;
  fullSaveBytes: number;
  rawUpsertBytes: number;
  /** Share of the full saves' row updates that were HOT (no index entry written). */
  hotShare: number;
}

async function walPosition(pool: pg.Pool): Promise<string> {
  return (await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
}

async function walSince(pool: pg.Pool, from: string): Promise<number> {
  return Number((await pool.query<{ n: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS n', [from])).rows[0]!.n);
}

export async function measureWal(database: Database, pool: pg.Pool, saves: number): Promise<WalFigures> {
  const snapshot = realisticSnapshot();
  await saveSupervisorStateFull(database.db, fullSaveFor(snapshot, 1));
  // Warm up (first updates of a page differ: full-page images after a checkpoint).
  for (let step = 2; step <= 50; step++) await saveSupervisorStateFull(database.db, fullSaveFor(snapshot, step));
  const stats = async () =>
    (await sql<{ upd: string; hot: string }>`SELECT n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables
      WHERE schemaname = current_schema() AND relname = 'supervisor_states'`.execute(database.db)).rows[0];
  const before = await stats();
  const fullFrom = await walPosition(pool);
  for (let step = 51; step < 51 + saves; step++) await saveSupervisorStateFull(database.db, fullSaveFor(snapshot, step));
  const fullBytes = await walSince(pool, fullFrom);
  // The statistics collector reports with a delay: wait until it has counted these updates.
  let after = await stats();
  for (let i = 0; i < 50 && Number(after?.upd ?? 0) - Number(before?.upd ?? 0) < saves; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sql`SELECT pg_stat_clear_snapshot()`.execute(database.db);
    after = await stats();
  }
  const updates = Number(after?.upd ?? 0) - Number(before?.upd ?? 0);
  const hot = Number(after?.hot ?? 0) - Number(before?.hot ?? 0);

  const doc = JSON.stringify(supervisorMachine.getPersistedSnapshot(snapshot));
  const id = 'wal-bench';
  for (let i = 0; i < 50; i++) await pool.query('INSERT INTO bench_raw (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc', [id, doc]);
  const rawFrom = await walPosition(pool);
  for (let i = 0; i < saves; i++) await pool.query('INSERT INTO bench_raw (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc', [id, doc]);
  const rawBytes = await walSince(pool, rawFrom);
  return { saves, fullSaveBytes: fullBytes / saves, rawUpsertBytes: rawBytes / saves, hotShare: updates > 0 ? hot / updates : Number.NaN };
}
