// Claiming supervisors: in bounded batches from daemons whose lease ran out (FOR UPDATE SKIP LOCKED, so two claimers
// never take the same row), one by id for a manual resume, and a check of which claimed ones a daemon still holds.

import { sql, type RawBuilder } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor } from '../supervisor-repository.js';

export interface ClaimedSupervisor {
  supervisorId: string;
  /** The new fencing epoch: every write for this supervisor carries it. */
  epoch: number;
  /** Who owned it before (null: nobody, e.g. created before leases, or never owned). */
  previousOwner: string | null;
  /** When the previous owner's lease ended (expired or released); null when there was no owner row. */
  previousLeaseEndedAt: Date | null;
}

const toDate = (value: Date | string | null): Date | null => (value === null ? null : value instanceof Date ? value : new Date(value));

/**
 * One claim statement: up to `limit` rows matching `candidates` whose owner is nobody or a daemon whose lease ended,
 * locked with SKIP LOCKED (rows a save in flight holds come up in a later round), owner set to this daemon and epoch
 * bumped. The dead daemons are a handful of rows, read once (an InitPlan), so the owner index does the rest.
 */
async function claimWhere(db: Executor, operation: string, marker: RawBuilder<unknown>, candidates: RawBuilder<boolean>, input: { daemonId: string; limit: number }): Promise<ClaimedSupervisor[]> {
  return withDatabaseErrors(operation, undefined, async () => {
    const result = await sql<{ id: string; epoch: string | number; previous_owner: string | null; previous_lease_end: Date | string | null }>`${marker}
      WITH candidate AS (
        SELECT s.id, s.owner AS previous_owner
        FROM supervisor_states s
        WHERE ${candidates}
          AND (
            s.owner IS NULL
            OR s.owner = ANY (ARRAY(SELECT d.id FROM supervisor_daemons d WHERE d.lease_expires_at <= now() AND d.id <> ${input.daemonId}))
          )
        LIMIT ${Math.max(1, Math.floor(input.limit))}
        FOR UPDATE OF s SKIP LOCKED
      )
      UPDATE supervisor_states AS s SET owner = ${input.daemonId}, epoch = s.epoch + 1
      FROM candidate c
      WHERE s.id = c.id
      RETURNING s.id, s.epoch, c.previous_owner,
        (SELECT d.lease_expires_at FROM supervisor_daemons d WHERE d.id = c.previous_owner) AS previous_lease_end`.execute(db);
    return result.rows.map((row) => ({
      supervisorId: row.id,
      epoch: Number(row.epoch),
      previousOwner: row.previous_owner,
      previousLeaseEndedAt: toDate(row.previous_lease_end),
    }));
  });
}

/** Claim up to `limit` unfinished supervisors whose owner's lease ended (or that have no owner). */
export function claimSupervisors(db: Executor, input: { daemonId: string; limit: number }): Promise<ClaimedSupervisor[]> {
  // The marker makes the Postgres seam prepare this every-round statement once per connection.
  return claimWhere(db, 'claimSupervisors', sql.raw('/* sr:claim_supervisors */'), sql<boolean>`s.state NOT IN ('completed', 'failed')`, input);
}

/**
 * At start-up only (it reads every finished row): claim finished supervisors whose row contradicts itself (the
 * column says completed or failed, its current checkpoint's snapshot says otherwise or is missing, or `failed` has no error), so the restoration
 * protocol examines them and falls back to the newest valid checkpoint instead of leaving them abandoned.
 */
export function claimContradictoryFinished(db: Executor, input: { daemonId: string; limit: number }): Promise<ClaimedSupervisor[]> {
  return claimWhere(
    db,
    'claimContradictoryFinished',
    sql.raw(''),
    sql<boolean>`s.state IN ('completed', 'failed')
      AND (
        NOT EXISTS (
          SELECT 1 FROM supervisor_checkpoints c
          WHERE c.supervisor_id = s.id AND c.seq = s.checkpoint_seq
            AND jsonb_typeof(c.snapshot) = 'object' AND (c.snapshot ->> 'value') = s.state::text
        )
        OR (s.state = 'failed' AND s.error_message IS NULL)
      )`,
    input,
  );
}

export type ClaimOneResult =
  | { outcome: 'claimed'; claim: ClaimedSupervisor }
  | { outcome: 'owned_elsewhere'; owner: string; ownerUrl: string | null }
  | { outcome: 'not_found' };

/**
 * Claim one supervisor by id (a manual resume): taken when nobody owns it, its owner's lease ended, or this daemon
 * owns it already (the epoch is bumped either way, which fences any older copy). Finished supervisors are claimable.
 */
export async function claimSupervisor(db: Executor, input: { daemonId: string; supervisorId: string }): Promise<ClaimOneResult> {
  return withDatabaseErrors('claimSupervisor', input.supervisorId, async () => {
    const result = await sql<{
      previous_owner: string | null;
      epoch: string | number | null;
      owner_url: string | null;
      owner_live: boolean | null;
      previous_lease_end: Date | string | null;
    }>`
      WITH target AS (
        SELECT s.id, s.owner, d.url, (d.lease_expires_at > now()) AS live, d.lease_expires_at
        FROM supervisor_states s LEFT JOIN supervisor_daemons d ON d.id = s.owner
        WHERE s.id = ${input.supervisorId}::uuid
        FOR UPDATE OF s
      ), claimed AS (
        UPDATE supervisor_states AS s SET owner = ${input.daemonId}, epoch = s.epoch + 1
        FROM target t
        WHERE s.id = t.id AND (t.owner IS NULL OR t.owner = ${input.daemonId} OR t.live IS NOT TRUE)
        RETURNING s.epoch
      )
      SELECT t.owner AS previous_owner, (SELECT epoch FROM claimed) AS epoch, t.url AS owner_url, t.live AS owner_live,
        t.lease_expires_at AS previous_lease_end
      FROM target t`.execute(db);
    const row = result.rows[0];
    if (!row) return { outcome: 'not_found' };
    if (row.epoch === null) return { outcome: 'owned_elsewhere', owner: row.previous_owner ?? '', ownerUrl: row.owner_url };
    return {
      outcome: 'claimed',
      claim: { supervisorId: input.supervisorId, epoch: Number(row.epoch), previousOwner: row.previous_owner, previousLeaseEndedAt: toDate(row.previous_lease_end) },
    };
  });
}

/** Of the given (id, epoch) pairs this daemon runs, the ids whose row now names another owner or epoch. */
export async function findLostOwnership(db: Executor, daemonId: string, held: ReadonlyArray<{ supervisorId: string; epoch: number }>): Promise<string[]> {
  if (held.length === 0) return [];
  const rows = JSON.stringify(held.map((entry) => ({ id: entry.supervisorId, epoch: entry.epoch })));
  return withDatabaseErrors('findLostOwnership', undefined, async () => {
    const result = await sql<{ id: string }>`
      SELECT h.id FROM jsonb_to_recordset(${rows}::jsonb) AS h(id uuid, epoch bigint)
      LEFT JOIN supervisor_states s ON s.id = h.id
      WHERE s.id IS NULL OR s.owner IS DISTINCT FROM ${daemonId} OR s.epoch <> h.epoch`.execute(db);
    return result.rows.map((row) => row.id);
  });
}

/** Unfinished supervisors `daemonId` owns, with their epochs (after a claim whose outcome is unknown). */
export async function listOwnedUnfinished(db: Executor, daemonId: string): Promise<Array<{ supervisorId: string; epoch: number }>> {
  return withDatabaseErrors('listOwnedUnfinished', undefined, async () => {
    const result = await sql<{ id: string; epoch: string | number }>`
      SELECT id, epoch FROM supervisor_states WHERE owner = ${daemonId} AND state NOT IN ('completed', 'failed')`.execute(db);
    return result.rows.map((row) => ({ supervisorId: row.id, epoch: Number(row.epoch) }));
  });
}

/**
 * An edit outside any daemon takes a supervisor away from an owner whose lease has ended: owner cleared and epoch
 * bumped, so that daemon (perhaps only paused, and still running its copy) is fenced out of every later write, its
 * heartbeats included, and the next claim restores the edited state. Only while the row still names `owner` at
 * `epoch` and that owner holds no live lease; resolves with the new epoch, or null when either changed meanwhile.
 */
export async function releaseFromLapsedOwner(db: Executor, supervisorId: string, fence: { owner: string; epoch: number }): Promise<number | null> {
  return withDatabaseErrors('releaseFromLapsedOwner', supervisorId, async () => {
    const result = await sql<{ epoch: string | number }>`
      UPDATE supervisor_states AS s SET owner = NULL, epoch = s.epoch + 1
      WHERE s.id = ${supervisorId}::uuid AND s.owner = ${fence.owner} AND s.epoch = ${fence.epoch}
        AND NOT EXISTS (SELECT 1 FROM supervisor_daemons d WHERE d.id = s.owner AND d.lease_expires_at > now() AND d.stopped_at IS NULL)
      RETURNING s.epoch`.execute(db);
    const row = result.rows[0];
    return row ? Number(row.epoch) : null;
  });
}

/** Who owns a supervisor now, and where that daemon's API answers. */
export async function getOwner(db: Executor, supervisorId: string): Promise<{ owner: string | null; epoch: number; ownerUrl: string | null; ownerLive: boolean } | null> {
  return withDatabaseErrors('getOwner', supervisorId, async () => {
    const result = await sql<{ owner: string | null; epoch: string | number; url: string | null; live: boolean | null }>`
      SELECT s.owner, s.epoch, d.url, (d.lease_expires_at > now() AND d.stopped_at IS NULL) AS live
      FROM supervisor_states s LEFT JOIN supervisor_daemons d ON d.id = s.owner
      WHERE s.id = ${supervisorId}::uuid`.execute(db);
    const row = result.rows[0];
    return row ? { owner: row.owner, epoch: Number(row.epoch), ownerUrl: row.url, ownerLive: row.live === true } : null;
  });
}

/**
 * At start-up, before claiming: unfinished supervisors that name this daemon id belong to its previous incarnation
 * (its lease had ended, or this one could not have joined). They become nobody's, so the claim takes them like any
 * other, and a frozen predecessor's late writes are refused.
 */
export async function disownPreviousIncarnation(db: Executor, daemonId: string): Promise<number> {
  return withDatabaseErrors('disownPreviousIncarnation', undefined, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_states SET owner = NULL WHERE owner = ${daemonId} AND state NOT IN ('completed', 'failed') RETURNING id`.execute(db);
    return result.rows.length;
  });
}
