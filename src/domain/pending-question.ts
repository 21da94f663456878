// A question the supervisor asked its human and is still waiting on.

export interface PendingQuestion {
  id: string;
  question: string;
  choices: string[] | null;
  context: string | null;
  /** ISO-8601 time the question was asked. */
  askedAt: string;
  /** How many times the question was delivered (asked = 1, each re-delivery adds 1). */
  deliveryCount: number;
  /** ISO-8601 time of the newest delivery. */
  lastDeliveredAt: string | null;
}

/** The first answer a question received; a second answer is refused and told this one. */
export interface AnsweredQuestion {
  id: string;
  question: string;
  answer: string;
  answeredAt: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** What is wrong with a stored pending question (empty: nothing), each problem naming `where`. */
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
