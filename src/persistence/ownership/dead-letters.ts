// Dead letters: inbound messages terminated because no retry could apply them, kept (bounded) for a person to inspect.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { Executor } from '../supervisors/records.js';

export interface DeadLetterWrite {
  subject: string;
  msgId: string | null;
  data: Uint8Array;
  reason: string;
  deliveryCount: number;
  receivedBy: string;
}

export interface DeadLetter {
  id: number;
  subject: string;
  msgId: string | null;
  /** The message as received, as text (invalid UTF-8 replaced, NUL written as \u0000). */
  payload: string;
  reason: string;
  deliveryCount: number;
  receivedBy: string;
  receivedAt: string;
}

/** Longest payload kept; the rest is cut (the message itself is at most the transport's limit). */
const MAX_PAYLOAD_CHARS = 65_536;

/** The bytes as storable text: Postgres text holds neither NUL nor invalid UTF-8. */
export function storablePayload(data: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data).replaceAll('\u0000', '\\u0000');
  return text.length > MAX_PAYLOAD_CHARS ? `${text.slice(0, MAX_PAYLOAD_CHARS)}… (${text.length - MAX_PAYLOAD_CHARS} more characters cut)` : text;
}

const storableText = (text: string) => text.replaceAll('\u0000', '\\u0000');

/**
 * Record dead letters in one statement; a message already recorded (same subject and id, redelivered) is not
 * recorded twice. Resolves with how many were new.
 */
export async function recordDeadLetters(db: Executor, letters: readonly DeadLetterWrite[]): Promise<number> {
  if (letters.length === 0) return 0;
  const rows = letters.map((letter) => ({
    subject: storableText(letter.subject),
    msg_id: letter.msgId === null ? null : storableText(letter.msgId),
    payload: storablePayload(letter.data),
    reason: storableText(letter.reason).slice(0, 2_000),
    delivery_count: letter.deliveryCount,
    received_by: letter.receivedBy,
  }));
  const result = await withDatabaseErrors('recordDeadLetters', undefined, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_dead_letters (subject, msg_id, payload, reason, delivery_count, received_by)
      SELECT DISTINCT ON (r.subject, coalesce(r.msg_id, r.payload)) r.subject, r.msg_id, r.payload, r.reason, r.delivery_count, r.received_by
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS r(subject text, msg_id text, payload text, reason text, delivery_count integer, received_by text)
      ON CONFLICT (subject, msg_id) WHERE msg_id IS NOT NULL DO NOTHING
      RETURNING id`.execute(db),
  );
  return result.rows.length;
}

/** Newest first. */
export async function listDeadLetters(db: Executor, options: { limit?: number } = {}): Promise<{ deadLetters: DeadLetter[]; total: number }> {
  return withDatabaseErrors('listDeadLetters', undefined, async () => {
    const [rows, count] = await Promise.all([
      db.selectFrom('supervisor_dead_letters').selectAll().orderBy('id', 'desc').limit(options.limit ?? 100).execute(),
      db.selectFrom('supervisor_dead_letters').select(sql<string | number>`count(*)`.as('n')).executeTakeFirst(),
    ]);
    return {
      total: Number(count?.n ?? 0),
      deadLetters: rows.map((row) => ({
        id: Number(row.id),
        subject: row.subject,
        msgId: row.msg_id,
        payload: row.payload,
        reason: row.reason,
        deliveryCount: row.delivery_count,
        receivedBy: row.received_by,
        receivedAt: toIso(row.received_at) ?? '',
      })),
    };
  });
}

/** Delete dead letters older than `olderThan`. */
export async function pruneDeadLetters(db: Executor, olderThan: Date): Promise<number> {
  const result = await withDatabaseErrors('pruneDeadLetters', undefined, () => db.deleteFrom('supervisor_dead_letters').where('received_at', '<', olderThan).executeTakeFirst());
  return Number(result.numDeletedRows);
}
