// Checks what comes out of jsonb and enum columns: stored data is never trusted to have the shape the code expects.

import { InvalidSnapshotError } from '../domain/errors.js';
import type { PendingQuestion } from '../domain/pending-question.js';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function checkPendingQuestion(value: unknown, where: string): string[] {
  if (!isRecord(value)) return [`${where} must be an object`];
  const problems: string[] = [];
  if (typeof value.id !== 'string' || value.id.length === 0) problems.push(`${where}.id must be a non-empty string`);
  if (typeof value.question !== 'string' || value.question.length === 0) problems.push(`${where}.question must be a non-empty string`);
  if (value.choices !== null && !(Array.isArray(value.choices) && value.choices.every((choice) => typeof choice === 'string'))) {
    problems.push(`${where}.choices must be null or a list of strings`);
  }
  if (value.context !== null && typeof value.context !== 'string') problems.push(`${where}.context must be null or a string`);
  if (typeof value.askedAt !== 'string' || !ISO_TIME.test(value.askedAt)) problems.push(`${where}.askedAt must be an ISO-8601 time`);
  if (!Number.isInteger(value.deliveryCount) || (value.deliveryCount as number) < 0) {
    problems.push(`${where}.deliveryCount must be a non-negative integer`);
  }
  if (value.lastDeliveredAt !== null && (typeof value.lastDeliveredAt !== 'string' || !ISO_TIME.test(value.lastDeliveredAt))) {
    problems.push(`${where}.lastDeliveredAt must be null or an ISO-8601 time`);
  }
  return problems;
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
