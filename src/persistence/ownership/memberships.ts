// Daemon membership rows: join, renew (one single-row update per round, however many supervisors the daemon owns),
// release at shutdown, and read. Lease times are the database's clock, so daemons on different hosts never disagree.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { Executor } from '../supervisor-repository.js';

export interface Membership {
  daemonId: string;
  incarnation: string;
  /** Database time this incarnation joined. */
  startedAt: Date;
  leaseExpiresAt: Date;
}

export interface MembershipView {
  daemonId: string;
  url: string | null;
  startedAt: string;
  leaseExpiresAt: string;
  stoppedAt: string | null;
  live: boolean;
  /** Supervisors (not finished) this daemon owns. */
  supervisors: number;
}

export type JoinResult = { joined: true; membership: Membership } | { joined: false; heldUntil: Date };

const toDate = (value: Date | string): Date => (value instanceof Date ? value : new Date(value));

/**
 * Take the membership row for `daemonId` as a new incarnation. Refused (joined: false) while another incarnation's
 * lease is live: two processes must never share an id.
 */
export interface ProcessIdentity {
  host: string;
  pid: number;
  processToken: string;
}

export async function joinMembership(
  db: Executor,
  input: { daemonId: string; incarnation: string; url: string | null; ttlMs: number; process: ProcessIdentity },
): Promise<JoinResult> {
  return withDatabaseErrors('joinMembership', undefined, async () => {
    const joined = await sql<{ started_at: Date | string; lease_expires_at: Date | string }>`
      INSERT INTO supervisor_daemons AS d (id, incarnation, url, host, pid, process_token, started_at, lease_expires_at)
      VALUES (${input.daemonId}, ${input.incarnation}::uuid, ${input.url}, ${input.process.host}, ${input.process.pid}::integer,
        ${input.process.processToken}::uuid, clock_timestamp(), clock_timestamp() + ${input.ttlMs}::integer * interval '1 millisecond')
      ON CONFLICT (id) DO UPDATE SET
        incarnation = EXCLUDED.incarnation, url = EXCLUDED.url, host = EXCLUDED.host, pid = EXCLUDED.pid,
        process_token = EXCLUDED.process_token, started_at = EXCLUDED.started_at,
        lease_expires_at = EXCLUDED.lease_expires_at, stopped_at = NULL
      WHERE d.lease_expires_at <= now() OR d.stopped_at IS NOT NULL
      RETURNING started_at, lease_expires_at`.execute(db);
    const row = joined.rows[0];
    if (row) {
      return { joined: true, membership: { daemonId: input.daemonId, incarnation: input.incarnation, startedAt: toDate(row.started_at), leaseExpiresAt: toDate(row.lease_expires_at) } };
    }
    const held = await sql<{ lease_expires_at: Date | string }>`SELECT lease_expires_at FROM supervisor_daemons WHERE id = ${input.daemonId}`.execute(db);
    return { joined: false, heldUntil: toDate(held.rows[0]?.lease_expires_at ?? new Date()) };
  });
}

export type RenewResult = { renewed: true; leaseExpiresAt: Date; lapsed: boolean } | { renewed: false };

/**
 * Extend this incarnation's lease. `lapsed` says the lease had already run out (a pause, an outage): other daemons may
 * have claimed some of its supervisors meanwhile. renewed: false means another incarnation took the id.
 */
export async function renewMembership(db: Executor, membership: Pick<Membership, 'daemonId' | 'incarnation'>, ttlMs: number): Promise<RenewResult> {
  return withDatabaseErrors('renewMembership', undefined, async () => {
    const result = await sql<{ lease_expires_at: Date | string; lapsed: boolean }>`
      /* sr:renew_membership */
      WITH old AS (
        SELECT lease_expires_at FROM supervisor_daemons
        WHERE id = ${membership.daemonId} AND incarnation = ${membership.incarnation}::uuid AND stopped_at IS NULL FOR UPDATE
      )
      UPDATE supervisor_daemons AS d SET lease_expires_at = now() + ${ttlMs}::integer * interval '1 millisecond'
      FROM old WHERE d.id = ${membership.daemonId} AND d.incarnation = ${membership.incarnation}::uuid
      -- A renewal that lands within half a second of the expiry counts as lapsed: a claim may have read it as ended.
      RETURNING d.lease_expires_at, old.lease_expires_at <= clock_timestamp() + interval '500 milliseconds' AS lapsed`.execute(db);
    return result;
  }).then((result) => {
    const row = result.rows[0];
    return row ? { renewed: true, leaseExpiresAt: toDate(row.lease_expires_at), lapsed: row.lapsed === true } : { renewed: false };
  });
}

/** Record where this incarnation's API answers (known only once the server listens). */
export async function advertiseMembership(db: Executor, membership: Pick<Membership, 'daemonId' | 'incarnation'>, url: string): Promise<void> {
  await withDatabaseErrors('advertiseMembership', undefined, () =>
    sql`UPDATE supervisor_daemons SET url = ${url} WHERE id = ${membership.daemonId} AND incarnation = ${membership.incarnation}::uuid`.execute(db),
  );
}

/** End the lease now (orderly shutdown): every supervisor this daemon owned is claimable at once. */
export async function releaseMembership(db: Executor, membership: Pick<Membership, 'daemonId' | 'incarnation'>): Promise<boolean> {
  return withDatabaseErrors('releaseMembership', undefined, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_daemons SET lease_expires_at = now(), stopped_at = now()
      WHERE id = ${membership.daemonId} AND incarnation = ${membership.incarnation}::uuid
      RETURNING id`.execute(db);
    return result.rows.length > 0;
  });
}

/** Milliseconds until the next live peer's lease runs out (database clock), or null when no other daemon is live. */
export async function nextPeerExpiryMs(db: Executor, daemonId: string): Promise<number | null> {
  return withDatabaseErrors('nextPeerExpiryMs', undefined, async () => {
    const result = await sql<{ ms: string | number | null }>`
      /* sr:next_peer_expiry */
      SELECT extract(epoch FROM min(lease_expires_at) - clock_timestamp()) * 1000 AS ms
      FROM supervisor_daemons WHERE id <> ${daemonId} AND stopped_at IS NULL AND lease_expires_at > now()`.execute(db);
    const ms = result.rows[0]?.ms;
    return ms === null || ms === undefined ? null : Math.max(0, Number(ms));
  });
}

/** Every daemon known to the database with how many unfinished supervisors it owns, live ones first. */
export async function listMemberships(db: Executor): Promise<MembershipView[]> {
  return withDatabaseErrors('listMemberships', undefined, async () => {
    const result = await sql<{
      id: string;
      url: string | null;
      started_at: Date | string;
      lease_expires_at: Date | string;
      stopped_at: Date | string | null;
      live: boolean;
      supervisors: string | number;
    }>`
      SELECT d.id, d.url, d.started_at, d.lease_expires_at, d.stopped_at, (d.lease_expires_at > now() AND d.stopped_at IS NULL) AS live,
        (SELECT count(*) FROM supervisor_states s WHERE s.owner = d.id AND s.state NOT IN ('completed', 'failed')) AS supervisors
      FROM supervisor_daemons d
      ORDER BY live DESC, d.started_at DESC`.execute(db);
    return result.rows.map((row) => ({
      daemonId: row.id,
      url: row.url,
      startedAt: toIso(row.started_at) ?? '',
      leaseExpiresAt: toIso(row.lease_expires_at) ?? '',
      stoppedAt: toIso(row.stopped_at),
      live: row.live === true,
      supervisors: Number(row.supervisors),
    }));
  });
}

/** Live-looking daemons on this host other than this process: the caller checks which of their processes are gone. */
export async function listLocalMemberships(
  db: Executor,
  host: string,
): Promise<Array<{ daemonId: string; incarnation: string; pid: number | null; processToken: string | null }>> {
  return withDatabaseErrors('listLocalMemberships', undefined, async () => {
    const result = await sql<{ id: string; incarnation: string; pid: number | null; process_token: string | null }>`
      SELECT id, incarnation, pid, process_token FROM supervisor_daemons WHERE host = ${host} AND lease_expires_at > now() AND stopped_at IS NULL`.execute(db);
    return result.rows.map((row) => ({ daemonId: row.id, incarnation: row.incarnation, pid: row.pid, processToken: row.process_token }));
  });
}

/** End the leases of daemons whose process is known to be gone (a kill -9 on this host): no need to wait out the TTL. */
export async function expireMemberships(db: Executor, members: ReadonlyArray<{ daemonId: string; incarnation: string }>): Promise<number> {
  if (members.length === 0) return 0;
  const rows = JSON.stringify(members.map((member) => ({ id: member.daemonId, incarnation: member.incarnation })));
  return withDatabaseErrors('expireMemberships', undefined, async () => {
    // Per incarnation: one that joined since the caller looked keeps its lease.
    const result = await sql<{ id: string }>`
      UPDATE supervisor_daemons d SET lease_expires_at = clock_timestamp()
      FROM jsonb_to_recordset(${rows}::jsonb) AS m(id text, incarnation uuid)
      WHERE d.id = m.id AND d.incarnation = m.incarnation AND d.lease_expires_at > now()
      RETURNING d.id`.execute(db);
    return result.rows.length;
  });
}

/** Forget daemons that ended more than `olderThanMs` ago and own no unfinished supervisor. */
export async function pruneMemberships(db: Executor, olderThanMs: number): Promise<number> {
  return withDatabaseErrors('pruneMemberships', undefined, async () => {
    const result = await sql<{ id: string }>`
      DELETE FROM supervisor_daemons d
      WHERE d.lease_expires_at < now() - ${olderThanMs}::integer * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM supervisor_states s WHERE s.owner = d.id AND s.state NOT IN ('completed', 'failed'))
      RETURNING d.id`.execute(db);
    return result.rows.length;
  });
}
