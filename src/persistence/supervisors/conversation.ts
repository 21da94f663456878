// Reads of a supervisor's stored conversation entries and their count.

import { sql } from 'kysely';
import type { ConversationEntry } from '../../domain/conversation.js';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { Executor } from './records.js';
import { wantedIds } from './wanted-ids.js';

/** Conversation entries in order, from `fromSeq` (default 0). */
export async function getConversation(db: Executor, supervisorId: string, options: { fromSeq?: number; limit?: number } = {}): Promise<ConversationEntry[]> {
  const rows = await withDatabaseErrors('getConversation', supervisorId, () =>
    db
      .selectFrom('supervisor_conversation')
      .selectAll()
      .where('supervisor_id', '=', supervisorId)
      .where('seq', '>=', options.fromSeq ?? 0)
      .orderBy('seq')
      .limit(options.limit ?? 10_000)
      .execute(),
  );
  return rows.map((row) => ({ seq: row.seq, role: row.role as ConversationEntry['role'], content: row.content, at: toIso(row.created_at) ?? '' }));
}

/** Number of conversation entries stored (the next free seq), whatever a snapshot says. */
export async function countConversation(db: Executor, supervisorId: string): Promise<number> {
  return (await countConversations(db, [supervisorId])).get(supervisorId) ?? 0;
}

/** countConversation for many supervisors in one query. */
export async function countConversations(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, number>> {
  const byId = new Map<string, number>(supervisorIds.map((id) => [id, 0]));
  if (supervisorIds.length === 0) return byId;
  // The highest seq of each, one backward index lookup per supervisor (see wantedIds).
  const rows = await withDatabaseErrors('countConversations', supervisorIds.length === 1 ? supervisorIds[0] : undefined, () =>
    db
      .selectFrom(wantedIds(supervisorIds))
      .innerJoinLateral(
        (eb) => eb.selectFrom('supervisor_conversation as c').select(sql<string | number>`c.seq + 1`.as('n')).whereRef('c.supervisor_id', '=', 'wanted.id').orderBy('c.seq', 'desc').limit(1).as('last'),
        (join) => join.onTrue(),
      )
      .select(['wanted.id as supervisor_id', 'last.n'])
      .execute(),
  );
  for (const row of rows) byId.set(row.supervisor_id, Number(row.n));
  return byId;
}
