// Appends outbox rows outside a save point.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import type { Executor, OutboxWrite } from './records.js';

/** Append outbox rows outside a save point (re-dispatching work the state already records). Existing msg ids are skipped. */
export async function enqueueOutbox(db: Executor, supervisorId: string, messages: OutboxWrite[]): Promise<number> {
  if (messages.length === 0) return 0;
  const rows = JSON.stringify(messages.map((message) => ({ subject: message.subject, payload: message.payload, msg_id: message.msgId })));
  const result = await withDatabaseErrors('enqueueOutbox', supervisorId, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_outbox (supervisor_id, subject, payload, msg_id)
      SELECT ${supervisorId}, o.subject, o.payload, o.msg_id FROM jsonb_to_recordset(${rows}::jsonb) AS o(subject text, payload jsonb, msg_id text)
      ON CONFLICT (msg_id) DO NOTHING
      RETURNING msg_id AS id`.execute(db),
  );
  return result.rows.length;
}
