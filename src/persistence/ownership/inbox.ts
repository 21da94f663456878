// The inbox: an answer or task event is recorded by whichever daemon received it (deduped by subject and message id)
// and applied by the supervisor's owner, so a message never bounces between daemons.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import { wantedIds } from '../supervisors/wanted-ids.js';
import type { Executor } from '../supervisor-repository.js';

export type InboxKind = 'answer' | 'task_event' | 'message';
export type InboxOutcome = 'applied' | 'duplicate' | 'refused' | 'unknown';

export interface InboundRecord {
  kind: InboxKind;
  /** For an answer or a message: the supervisor the subject names. */
  supervisorId?: string;
  /** For a task event: the task the subject names (its supervisor is looked up in the same statement). */
  taskId?: string;
  /**
   * For a message: the supervisor it says it is from. It must be a stored supervisor (any state, a fork or a finished
   * one included), looked up by primary key in the same statement; supervisors are never deleted, so a sender found
   * now existed when it sent.
   */
  senderId?: string;
  payload: unknown;
  msgId: string;
  epoch: number | null;
  receivedBy: string;
}

export type RecordInboundResult =
  | { outcome: 'recorded'; supervisorId: string; owner: string | null }
  /** Recorded already stamped refused: the supervisor is finished, so nothing can ever apply it (and no owner is woken). */
  | { outcome: 'refused'; supervisorId: string; detail: string }
  | { outcome: 'duplicate'; supervisorId: string }
  /** A message whose `from` names no stored supervisor: nothing recorded (only a raw publish can send one). */
  | { outcome: 'unknownSender'; supervisorId: string; senderId: string }
  | { outcome: 'unknown' };

export interface InboxRow {
  id: number;
  supervisorId: string;
  /** The supervisor's stored state when the row was read (a finished one can apply nothing). */
  supervisorState: string;
  kind: InboxKind;
  payload: unknown;
  msgId: string;
  epoch: number | null;
  receivedBy: string;
  receivedAt: string;
}

/**
 * Record one inbound message for its supervisor, once per message id, and wake the owner (`channel`, delivered at
 * commit). `unknown`: no such supervisor or task; `unknownSender`: a message from no stored supervisor, not recorded;
 * `duplicate`: this message id was recorded before; `refused`: the
 * supervisor is completed or failed, so the row is stamped at once (as the owner's applier would stamp it) instead of
 * waiting for an owner that may be gone for good: nobody claims a finished supervisor, and an unstamped row is never
 * pruned.
 */
export async function recordInbound(db: Executor, record: InboundRecord, channel: string | null): Promise<RecordInboundResult> {
  const target =
    record.kind === 'task_event'
      ? sql`SELECT s.id, s.owner, s.state::text AS state FROM supervisor_tasks t JOIN supervisor_states s ON s.id = t.supervisor_id WHERE t.id = ${record.taskId ?? null}`
      : sql`SELECT s.id, s.owner, s.state::text AS state FROM supervisor_states s WHERE s.id = ${record.supervisorId ?? null}::uuid`;
  // A message's sender must be stored: one primary-key probe in the same statement (true for anything but a message).
  const senderKnown =
    record.kind === 'message' ? sql`EXISTS (SELECT 1 FROM supervisor_states f WHERE f.id = ${record.senderId ?? null}::uuid)` : sql`true`;
  return withDatabaseErrors('recordInbound', record.supervisorId, async () => {
    const result = await sql<{ id: string; owner: string | null; inserted: string | number; detail: string | null; sender_known: boolean }>`
      WITH target AS (
        SELECT t.id, t.owner, CASE WHEN t.state IN ('completed', 'failed') THEN 'supervisor is ' || t.state END AS finished, ${senderKnown} AS sender_known
        FROM (${target}) t
      ),
      ins AS (
        INSERT INTO supervisor_inbox (supervisor_id, kind, payload, msg_id, epoch, received_by, applied_at, outcome, detail)
        SELECT target.id, ${record.kind}, ${JSON.stringify(record.payload)}::jsonb, ${record.msgId}, ${record.epoch}::bigint, ${record.receivedBy},
          CASE WHEN target.finished IS NOT NULL THEN now() END, CASE WHEN target.finished IS NOT NULL THEN 'refused' END, target.finished
        FROM target WHERE target.sender_known
        ON CONFLICT (msg_id) DO NOTHING
        RETURNING id
      )
      SELECT target.id, target.owner, (SELECT count(*) FROM ins) AS inserted, target.finished AS detail, target.sender_known,
        CASE WHEN ${channel}::text IS NOT NULL AND target.finished IS NULL AND EXISTS (SELECT 1 FROM ins) THEN pg_notify(${channel}::text, 'inbox ' || coalesce(target.owner, '')) END AS notified
      FROM target`.execute(db);
    const row = result.rows[0];
    if (!row) return { outcome: 'unknown' };
    if (!row.sender_known) return { outcome: 'unknownSender', supervisorId: row.id, senderId: record.senderId ?? '' };
    if (Number(row.inserted) === 0) return { outcome: 'duplicate', supervisorId: row.id };
    return row.detail !== null ? { outcome: 'refused', supervisorId: row.id, detail: row.detail } : { outcome: 'recorded', supervisorId: row.id, owner: row.owner };
  });
}

/**
 * Unapplied messages for supervisors this daemon owns, oldest first, leaving out `skip` (supervisors whose messages
 * are waiting for something, so they never crowd out the rest of the inbox).
 */
export async function listInboxForOwner(db: Executor, daemonId: string, limit: number, skip: readonly string[] = []): Promise<InboxRow[]> {
  return withDatabaseErrors('listInboxForOwner', undefined, async () => {
    const result = await sql<{
      id: string | number;
      supervisor_id: string;
      state: string;
      kind: InboxKind;
      payload: unknown;
      msg_id: string;
      epoch: string | number | null;
      received_by: string;
      received_at: Date | string;
    }>`
      /* sr:list_inbox */
      SELECT i.id, i.supervisor_id, s.state::text AS state, i.kind, i.payload, i.msg_id, i.epoch, i.received_by, i.received_at
      FROM supervisor_inbox i JOIN supervisor_states s ON s.id = i.supervisor_id
      WHERE i.applied_at IS NULL AND s.owner = ${daemonId} AND NOT (i.supervisor_id = ANY (${[...skip]}::uuid[]))
      ORDER BY i.id
      LIMIT ${Math.max(1, Math.floor(limit))}`.execute(db);
    return result.rows.map((row) => ({
      id: Number(row.id),
      supervisorId: row.supervisor_id,
      supervisorState: row.state,
      kind: row.kind,
      payload: row.payload,
      msgId: row.msg_id,
      epoch: row.epoch === null ? null : Number(row.epoch),
      receivedBy: row.received_by,
      receivedAt: toIso(row.received_at) ?? '',
    }));
  });
}

/**
 * Stamp a message as handled, with what happened to it: fenced like every write, so an owner that has just lost the
 * supervisor cannot stamp a message its successor still has to apply. Returns false when the stamp was refused.
 */
export async function markInboxApplied(
  db: Executor,
  id: number,
  result: { outcome: InboxOutcome; detail: string | null },
  fence: { owner: string; epoch: number | null },
): Promise<boolean> {
  const stamped = await withDatabaseErrors('markInboxApplied', undefined, () =>
    sql<{ id: string }>`
      UPDATE supervisor_inbox i SET applied_at = now(), outcome = ${result.outcome}, detail = ${result.detail === null ? null : result.detail.slice(0, 2000)}
      FROM supervisor_states s
      WHERE i.id = ${id} AND i.applied_at IS NULL AND s.id = i.supervisor_id AND s.owner = ${fence.owner}
        AND (${fence.epoch}::bigint IS NULL OR s.epoch = ${fence.epoch}::bigint)
      RETURNING i.id`.execute(db),
  );
  return stamped.rows.length > 0;
}

/** Delete handled messages older than `olderThan`; their message ids stop deduplicating then. */
export async function pruneInbox(db: Executor, olderThan: Date): Promise<number> {
  const result = await withDatabaseErrors('pruneInbox', undefined, () =>
    db.deleteFrom('supervisor_inbox').where('applied_at', 'is not', null).where('applied_at', '<', olderThan).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}

/**
 * Questions whose answer is recorded in the inbox and not applied yet, per supervisor (a restore does not deliver
 * them again: the owner applies the answer right after it). One index lookup per supervisor (see wantedIds).
 */
export async function listWaitingAnswers(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, string[]>> {
  const byId = new Map<string, string[]>(supervisorIds.map((id) => [id, []]));
  if (supervisorIds.length === 0) return byId;
  const rows = await withDatabaseErrors('listWaitingAnswers', supervisorIds.length === 1 ? supervisorIds[0] : undefined, () =>
    sql<{ supervisor_id: string; question_id: string | null }>`
      SELECT wanted.id AS supervisor_id, waiting.question_id FROM ${wantedIds(supervisorIds)}
      CROSS JOIN LATERAL (
        SELECT i.payload ->> 'questionId' AS question_id FROM supervisor_inbox i
        WHERE i.supervisor_id = wanted.id AND i.applied_at IS NULL AND i.kind = 'answer' OFFSET 0
      ) waiting`.execute(db),
  );
  for (const row of rows.rows) if (row.question_id !== null) byId.get(row.supervisor_id)?.push(row.question_id);
  return byId;
}
