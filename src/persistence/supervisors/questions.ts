// Reads of supervisor_questions: every question a supervisor asked, with its answer once it has one.

import type { Selectable } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { toIso } from '../row-parsers.js';
import type { DatabaseSchema } from '../schema.js';
import type { Executor, QuestionRecord } from './records.js';
import { wantedIds } from './wanted-ids.js';

function toQuestionRecord(row: Selectable<DatabaseSchema['supervisor_questions']>): QuestionRecord {
  const choices = Array.isArray(row.choices) && row.choices.every((choice) => typeof choice === 'string') ? (row.choices as string[]) : null;
  return {
    supervisorId: row.supervisor_id,
    id: row.id,
    question: row.question,
    choices,
    context: row.context,
    askedAt: toIso(row.asked_at) ?? '',
    answer: row.answer,
    answeredAt: toIso(row.answered_at),
    withdrawnAt: toIso(row.withdrawn_at),
    withdrawnReason: row.withdrawn_reason,
  };
}

/** One question of one supervisor, pending or answered; null when it never asked it. */
export async function getQuestion(db: Executor, supervisorId: string, questionId: string): Promise<QuestionRecord | null> {
  const row = await withDatabaseErrors('getQuestion', supervisorId, () =>
    db.selectFrom('supervisor_questions').selectAll().where('supervisor_id', '=', supervisorId).where('id', '=', questionId).executeTakeFirst(),
  );
  return row ? toQuestionRecord(row) : null;
}

/**
 * A supervisor's questions, newest asked first; `answered` narrows to answered (true) or pending (false) ones (a
 * withdrawn question is neither).
 */
export async function listQuestions(db: Executor, supervisorId: string, options: { answered?: boolean; limit?: number } = {}): Promise<QuestionRecord[]> {
  const rows = await withDatabaseErrors('listQuestions', supervisorId, () => {
    let query = db.selectFrom('supervisor_questions').selectAll().where('supervisor_id', '=', supervisorId);
    if (options.answered === true) query = query.where('answered_at', 'is not', null);
    if (options.answered === false) query = query.where('answered_at', 'is', null).where('withdrawn_at', 'is', null);
    return query.orderBy('asked_at', 'desc').orderBy('id').limit(options.limit ?? 100).execute();
  });
  return rows.map(toQuestionRecord);
}

/** The stored rows of the given question ids (pending or answered); ids never asked are absent. */
export async function getQuestions(db: Executor, supervisorId: string, ids: readonly string[]): Promise<QuestionRecord[]> {
  if (ids.length === 0) return [];
  const rows = await withDatabaseErrors('getQuestions', supervisorId, () =>
    db.selectFrom('supervisor_questions').selectAll().where('supervisor_id', '=', supervisorId).where('id', 'in', [...ids]).execute(),
  );
  return rows.map(toQuestionRecord);
}

/** Every question still waiting for an answer (not answered, not withdrawn), oldest first; restoration compares them with its snapshot. */
export async function listPendingQuestions(db: Executor, supervisorId: string): Promise<QuestionRecord[]> {
  return (await listPendingQuestionsOf(db, [supervisorId])).get(supervisorId) ?? [];
}

/** listPendingQuestions for many supervisors in one query. */
export async function listPendingQuestionsOf(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, QuestionRecord[]>> {
  const byId = new Map<string, QuestionRecord[]>(supervisorIds.map((id) => [id, []]));
  if (supervisorIds.length === 0) return byId;
  const rows = await withDatabaseErrors('listPendingQuestionsOf', supervisorIds.length === 1 ? supervisorIds[0] : undefined, () =>
    db
      .selectFrom(wantedIds(supervisorIds))
      .innerJoinLateral(
        (eb) =>
          eb
            .selectFrom('supervisor_questions')
            .selectAll()
            .whereRef('supervisor_id', '=', 'wanted.id')
            .where('answered_at', 'is', null)
            .where('withdrawn_at', 'is', null)
            .offset(0)
            .as('q'),
        (join) => join.onTrue(),
      )
      .selectAll('q')
      .orderBy('q.asked_at')
      .orderBy('q.id')
      .execute(),
  );
  for (const row of rows) byId.get(row.supervisor_id)?.push(toQuestionRecord(row));
  return byId;
}
