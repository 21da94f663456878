// Reads of the messages supervisors sent each other: one supervisor's, newest first, and the one under an id.

import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { Executor, MessageRecord } from './records.js';

type Row = {
  supervisor_id: string;
  direction: 'sent' | 'received';
  peer_id: string;
  message_id: string;
  body: string;
  sent_at: Date;
  received_at: Date | null;
  created_at: Date;
};

const toMessage = (row: Row): MessageRecord => ({
  supervisorId: row.supervisor_id,
  direction: row.direction,
  peerId: row.peer_id,
  messageId: row.message_id,
  body: row.body,
  sentAt: toIso(row.sent_at) ?? '',
  receivedAt: toIso(row.received_at),
  createdAt: toIso(row.created_at) ?? '',
});

/** A supervisor's messages, newest first: both directions, or one. */
export async function listMessages(db: Executor, supervisorId: string, options: { direction?: 'sent' | 'received'; limit?: number } = {}): Promise<MessageRecord[]> {
  const rows = await withDatabaseErrors('listMessages', supervisorId, () => {
    let query = db.selectFrom('supervisor_messages').selectAll().where('supervisor_id', '=', supervisorId);
    if (options.direction) query = query.where('direction', '=', options.direction);
    return query.orderBy('created_at', 'desc').orderBy('message_id', 'desc').limit(options.limit ?? 100).execute();
  });
  return rows.map(toMessage);
}

/** The message a supervisor sent under its id (whoever it went to), or the one it took in from `from` under it. */
export async function getMessage(db: Executor, supervisorId: string, key: { direction: 'sent'; messageId: string } | { direction: 'received'; from: string; messageId: string }): Promise<MessageRecord | null> {
  const row = await withDatabaseErrors('getMessage', supervisorId, () => {
    let query = db.selectFrom('supervisor_messages').selectAll().where('supervisor_id', '=', supervisorId).where('direction', '=', key.direction).where('message_id', '=', key.messageId);
    if (key.direction === 'received') query = query.where('peer_id', '=', key.from);
    return query.executeTakeFirst();
  });
  return row ? toMessage(row) : null;
}
