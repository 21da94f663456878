// The supervisors a batch read is about, as a one-column relation to join: `unnest($1::uuid[]) AS wanted(id)`.
//
// A batch read written `WHERE supervisor_id IN ($1, …, $250)` leaves the plan to the table's statistics. Where they
// are missing or stale (autovacuum off, a table just bulk-loaded, as after a fleet's restart) the planner reads the
// 250-value list as a large share of the table and scans all of it: restore-all of 10,000 supervisors spent 6.7 s of
// Postgres time counting conversations that way. A plain join from this relation is no better (the planner hashes the
// whole other table). So each batch read takes its rows in a LATERAL subquery per id, fenced with `OFFSET 0` so the
// planner cannot flatten it back into a join: one index lookup per id whatever the statistics say, and the same
// statement text for every batch size. An id given twice is looked up once.

import { sql, type AliasedRawBuilder } from 'kysely';

export function wantedIds(supervisorIds: readonly string[]): AliasedRawBuilder<{ id: string }, 'wanted'> {
  return sql<{ id: string }>`unnest(${[...new Set(supervisorIds)]}::uuid[])`.as<'wanted'>(sql`wanted(id)`);
}
