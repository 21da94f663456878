// The outbox relay's SQL: claim unsent rows in order, mark them sent, prune old ones, count the backlog. One round trip each.

import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema } from './schema.js';
import { withDatabaseErrors } from './database-errors.js';
import { toIso } from './row-parsers.js';
import type { Executor } from './supervisor-repository.js';

/** One message waiting in (or relayed from) supervisor_outbox. */
export interface OutboxRow {
  id: number;
  supervisorId: string;
  /** Already carries the writer's subject prefix. */
  subject: string;
  /** The message as JSON (parsed). */
  payload: unknown;
  /** Stable effect id `<supervisorId>:<step>:<index>`, sent as the transport's dedup id. */
  msgId: string;
  /** The owner's fencing epoch when the row was written (null for rows written outside a save point). */
  epoch: number | null;
  createdAt: string;
}

export interface OutboxFilter {
  /**
   * Only rows whose subject is under `<prefix>supervisors.` or `<prefix>tasks.`: the ones a transport with this prefix can
   * carry. Rows written by a runtime with another prefix are left to that runtime's relay instead of blocking this one.
   * Left out: every row.
   */
  subjectPrefix?: string;
}

/** A condition on `subject`: true for every row when no prefix is given. */
function subjectFilter(filter: OutboxFilter) {
  if (filter.subjectPrefix === undefined) return sql<boolean>`true`;
  const prefix = filter.subjectPrefix;
  return sql<boolean>`(starts_with(subject, ${`${prefix}supervisors.`}) OR starts_with(subject, ${`${prefix}tasks.`}))`;
}

/**
 * Lock and return up to `limit` unsent rows, oldest first; call inside a transaction and mark them sent before it commits.
 *
 * Two relays must never publish rows of the same supervisor out of order. Row locks alone do not ensure that: while relay A
 * holds rows 1–2 of supervisor S, SKIP LOCKED would hand row 3 of S to relay B, which could publish it first. So each claim
 * also takes a transaction-scoped advisory lock per supervisor, inside the WHERE clause: a row is only claimable by the
 * relay that holds its supervisor's lock, and the lock is released when that relay's transaction ends, by which time the
 * rows it took are published and marked sent. We chose this over "no earlier unsent row of the same supervisor" because
 * that form cannot see which earlier rows are locked by someone else (only pg_locks can) and would limit a batch to one
 * row per supervisor. The two-int form keeps the keys apart from the migrator's single-bigint lock, and the first key
 * names the schema so test schemas (and deployments) sharing one database never wait on each other. A hash collision
 * between two supervisors only makes them share a lock, which costs parallelism, never order.
 */
export async function claimOutboxBatch(trx: Executor, limit: number, filter: OutboxFilter = {}): Promise<OutboxRow[]> {
  const rows = await withDatabaseErrors('claimOutboxBatch', undefined, () =>
    sql<{ id: string | number; supervisor_id: string; subject: string; payload: unknown; msg_id: string; epoch: string | number | null; created_at: Date | string }>`
      SELECT id, supervisor_id, subject, payload, msg_id, epoch, created_at
      FROM supervisor_outbox
      WHERE sent_at IS NULL AND id IN (
        -- Candidates in id order first, then the lock, so locks are only tried on rows in order until the limit is met.
        -- OFFSET 0 keeps the lock from being pushed below the sort: there, a sort-based plan (a table without statistics
        -- yet) would try the lock on every unsent row and one relay would hold every supervisor with a backlog.
        SELECT candidate.id
        FROM (
          SELECT id, supervisor_id FROM supervisor_outbox
          WHERE sent_at IS NULL AND ${subjectFilter(filter)}
          ORDER BY id
          OFFSET 0
        ) AS candidate
        WHERE pg_try_advisory_xact_lock(hashtext('supervisor-outbox:' || current_schema()), hashtext(candidate.supervisor_id::text))
        LIMIT ${Math.max(1, Math.floor(limit))}
      )
      ORDER BY id
      FOR UPDATE SKIP LOCKED`.execute(trx),
  );
  return rows.rows.map((row) => ({
    id: Number(row.id),
    supervisorId: row.supervisor_id,
    subject: row.subject,
    payload: row.payload,
    msgId: row.msg_id,
    epoch: row.epoch === null ? null : Number(row.epoch),
    createdAt: toIso(row.created_at) ?? '',
  }));
}

/** Stamp rows as relayed. Returns how many changed. */
export async function markOutboxSent(trx: Executor, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await withDatabaseErrors('markOutboxSent', undefined, () =>
    trx
      .updateTable('supervisor_outbox')
      .set({ sent_at: sql<Date>`now()` })
      .where('id', 'in', [...ids])
      .where('sent_at', 'is', null)
      .executeTakeFirst(),
  );
  return Number(result.numUpdatedRows);
}

/**
 * Publish one step's rows straight after its commit, in the order claims keep: on one pinned connection, take the
 * supervisor's outbox lock (the key claims try) for the session and check that no earlier row of that supervisor is
 * still unsent; only then run `publish`, mark what it reports sent, and drop the lock. Resolves 'declined' (nothing
 * published) when another relay holds the supervisor or earlier rows wait: the claim loop then publishes in order.
 */
export async function publishStepRows(
  db: Kysely<DatabaseSchema>,
  supervisorId: string,
  msgIds: readonly string[],
  publish: () => Promise<string[]>,
): Promise<'published' | 'declined'> {
  return withDatabaseErrors('publishStepRows', supervisorId, () =>
    db.connection().execute(async (connection) => {
      const key = sql`hashtext('supervisor-outbox:' || current_schema()), hashtext(${supervisorId}::text)`;
      const checked = await sql<{ locked: boolean; earlier: boolean }>`
        SELECT pg_try_advisory_lock(${key}) AS locked,
               EXISTS (SELECT 1 FROM supervisor_outbox WHERE supervisor_id = ${supervisorId}::uuid AND sent_at IS NULL AND NOT (msg_id = ANY (${[...msgIds]}::text[]))) AS earlier`.execute(connection);
      const { locked, earlier } = checked.rows[0] ?? { locked: false, earlier: true };
      if (!locked) return 'declined';
      try {
        if (earlier) return 'declined';
        const sent = await publish();
        if (sent.length > 0) {
          await connection.updateTable('supervisor_outbox').set({ sent_at: sql<Date>`now()` }).where('msg_id', 'in', sent).where('sent_at', 'is', null).execute();
        }
        return 'published';
      } finally {
        await sql`SELECT pg_advisory_unlock(${key})`.execute(connection);
      }
    }),
  );
}

/** Delete rows relayed before `olderThan` (unsent rows are never touched). Returns how many went. */
export async function pruneSentOutbox(db: Executor, olderThan: Date): Promise<number> {
  const result = await withDatabaseErrors('pruneSentOutbox', undefined, () =>
    db.deleteFrom('supervisor_outbox').where('sent_at', 'is not', null).where('sent_at', '<', olderThan).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}

/** How many rows wait to be relayed (the backlog), optionally only those a transport with this prefix carries. */
export async function countUnsentOutbox(db: Executor, filter: OutboxFilter = {}): Promise<number> {
  const result = await withDatabaseErrors('countUnsentOutbox', undefined, () =>
    sql<{ n: string | number }>`SELECT count(*) AS n FROM supervisor_outbox WHERE sent_at IS NULL AND ${subjectFilter(filter)}`.execute(db),
  );
  return Number(result.rows[0]?.n ?? 0);
}
