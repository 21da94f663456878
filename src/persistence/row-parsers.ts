// Checks what comes out of jsonb and enum columns: stored data is never trusted to have the shape the code expects.

import { InvalidSnapshotError } from '../domain/errors.js';
import { checkPendingQuestion, type PendingQuestion } from '../domain/pending-question.js';

export { checkPendingQuestion };

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parsePendingQuestions(value: unknown): ParseResult<PendingQuestion[]> {
  if (!Array.isArray(value)) return { ok: false, problems: ['pending_questions must be a JSON array'] };
  const problems = value.flatMap((item, index) => checkPendingQuestion(item, `pending_questions[${index}]`));
  const ids = value.filter(isRecord).map((item) => item.id);
  const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
  if (duplicate !== undefined) problems.push(`pending_questions has question id ${String(duplicate)} more than once`);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: value as PendingQuestion[] };
}

export function pendingQuestionsOrThrow(supervisorId: string, value: unknown): PendingQuestion[] {
  const parsed = parsePendingQuestions(value);
  if (!parsed.ok) throw new InvalidSnapshotError(supervisorId, parsed.problems);
  return parsed.value;
}

export function checkProgress(value: unknown): string | null {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 100 ? null : `must be an integer 0–100 (got ${JSON.stringify(value)})`;
}

export function toIso(value: Date | string | null): string | null {
  if (value === null) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
