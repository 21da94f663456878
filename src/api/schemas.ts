// JSON schemas of every request the HTTP API accepts, with the TypeScript shape each one guarantees.
// Bodies are closed (`additionalProperties: false`): a misspelt field is a 400 naming it, never silently ignored.

import { CALLER_ID_PATTERN, UUID_PATTERN } from '../domain/ids.js';
import type { SupervisorCommand } from '../runtime/agent-driver.js';

const text = { type: 'string', minLength: 1 } as const;

// Ajv reports a failed `pattern` with the regex alone; each pattern is registered with the rule a client is told instead.
const PATTERN_RULES = new Map<string, string>();

/** A string matching `pattern`, whose refusal says `must be <rule>`. */
function patterned(pattern: string, rule: string) {
  PATTERN_RULES.set(pattern, rule);
  return { type: 'string', pattern } as const;
}

/** The rule registered for a schema pattern, in words; undefined for a pattern nobody registered. */
export function patternRule(pattern: string): string | undefined {
  return PATTERN_RULES.get(pattern);
}

/** A query value that is a whole number of at most `digits` digits, from 0 or from 1 (querystrings stay strings). */
export function wholeNumberText(digits: number, from: 0 | 1) {
  const pattern = from === 1 ? `^[1-9][0-9]{0,${digits - 1}}$` : `^[0-9]{1,${digits}}$`;
  return patterned(pattern, `a whole number from ${from} to ${'9'.repeat(digits)}`);
}

/**
 * Ids a caller chooses for what it creates: task ids become NATS subject tokens (tasks.<taskId>.events), question ids
 * path segments of the answer and withdraw URLs. Letters, digits, `_` and `-` only, so each is usable as it is.
 */
const callerIdText = patterned(CALLER_ID_PATTERN, 'letters, digits, _ and - only, 1 to 128 characters (it is used in subjects and URLs as it is)');
const taskIdText = callerIdText;
const questionIdText = callerIdText;
const messageIdText = callerIdText;
const anyText = { type: 'string' } as const;
const progress = { type: 'integer', minimum: 0, maximum: 100 } as const;
const choices = { type: 'array', items: text, minItems: 1 } as const;

/** A closed object schema: every property listed, the required ones named. */
function body(properties: Record<string, object>, required: string[] = []) {
  return { type: 'object', properties, required, additionalProperties: false } as const;
}

// ---------------------------------------------------------------- params and querystrings

/** A plain UUID, as Postgres' uuid type takes it (Ajv's format "uuid" also lets "urn:uuid:…" through). */
const supervisorIdText = patterned(UUID_PATTERN, 'a UUID');
export const supervisorIdParams = body({ id: supervisorIdText }, ['id']);
export const questionParams = body({ id: supervisorIdText, questionId: callerIdText }, ['id', 'questionId']);
/** A listing route without query parameters: any one given is a 400 naming it, not silently ignored. */
export const noQuery = body({});
export const taskIdParams = body({ taskId: callerIdText }, ['taskId']);

export interface SupervisorIdParams {
  id: string;
}
export interface QuestionParams {
  id: string;
  questionId: string;
}
export interface TaskIdParams {
  taskId: string;
}

// Querystrings stay strings (type coercion is off so bodies are never coerced); the handler converts them.
export const MAX_SUPERVISORS_PAGE = 1000;
export const listSupervisorsQuery = body({ pendingQuestions: { type: 'string', enum: ['true', 'false'] }, limit: wholeNumberText(4, 1), after: supervisorIdText });
export interface ListSupervisorsQuery {
  pendingQuestions?: 'true' | 'false';
  /** 1–9999 as text; capped at MAX_SUPERVISORS_PAGE. */
  limit?: string;
  /** The `next` of the page before. */
  after?: string;
}

/** A listing with only a page size: 1–9999 as text, capped by the handler. */
export const listLimitQuery = body({ limit: wholeNumberText(4, 1) });
export interface ListLimitQuery {
  limit?: string;
}

export const MAX_CHECKPOINTS = 1000;
export const listCheckpointsQuery = body({
  limit: wholeNumberText(4, 1),
  beforeSeq: wholeNumberText(9, 0),
  snapshots: { type: 'string', enum: ['true', 'false'] },
});
export interface ListCheckpointsQuery {
  /** 1–9999 as text; capped at MAX_CHECKPOINTS. */
  limit?: string;
  /** Only checkpoints older than this seq (the next page: the last seq seen), as text. */
  beforeSeq?: string;
  /** Include each checkpoint's persisted snapshot (large); off by default. */
  snapshots?: 'true' | 'false';
}

// ---------------------------------------------------------------- bodies

export const spawnSupervisorBody = body({ id: anyText, name: text, phase: text, driver: text }, ['name']);
export interface SpawnSupervisorBody {
  id?: string;
  name: string;
  phase?: string;
  driver?: string;
}

export const forkBody = body({
  checkpointSeq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  id: anyText,
  name: text,
  driver: text,
  start: { type: 'boolean' },
});
export interface ForkBody {
  /** The checkpoint to fork from (default: the newest). */
  checkpointSeq?: number;
  /** The fork's UUID: its idempotency key (a retry answers with the same fork). */
  id?: string;
  name?: string;
  driver?: string;
  start?: boolean;
}

export const sendMessageBody = body({ to: supervisorIdText, body: text, messageId: messageIdText }, ['to', 'body']);
export interface SendMessageBody {
  to: string;
  body: string;
  /** The sender's id for the message: a retried send of the same message under it is recognised, not sent twice. */
  messageId?: string;
}

export const listMessagesQuery = body({ direction: { type: 'string', enum: ['sent', 'received'] }, limit: wholeNumberText(4, 1) });
export interface ListMessagesQuery {
  direction?: 'sent' | 'received';
  limit?: string;
}

export const askQuestionBody = body({ question: text, choices, context: anyText, questionId: questionIdText }, ['question']);
export interface AskQuestionBody {
  question: string;
  /** The caller's id for the question: a retried ask of the same question under it is recognised, not asked twice. */
  questionId?: string;
  choices?: string[];
  context?: string;
}

export const answerBody = body({ answer: anyText }, ['answer']);
export interface AnswerBody {
  answer: string;
}

export const withdrawBody = body({ reason: anyText });
export interface WithdrawBody {
  reason?: string;
}

export const spawnTaskBody = body({ description: text, taskId: taskIdText }, ['description']);
export interface SpawnTaskBody {
  description: string;
  /** The caller's id for the task: a retried spawn with the same id and description is recognised, not run twice. */
  taskId?: string;
}

export const TASK_REPORT_TYPES = ['progress', 'completed', 'failed'] as const;
export const taskEventBody = body({ type: { type: 'string', enum: TASK_REPORT_TYPES }, progress, result: anyText, error: anyText }, ['type']);
export interface TaskEventBody {
  type: (typeof TASK_REPORT_TYPES)[number];
  progress?: number;
  result?: string;
  error?: string;
}

/** One closed schema per event type: `type` picks the schema (Ajv's discriminator), so errors speak of that event only. */
function event(type: string, properties: Record<string, object> = {}, required: string[] = []) {
  return body({ type: { const: type }, ...properties }, ['type', ...required]);
}

/**
 * Events a client may send, one schema each. RESTORED is missing on purpose: only the restoration protocol may claim a
 * restore; so is RECEIVE_MESSAGE: only a message another supervisor sent is received. `at` is missing on purpose too: the daemon stamps every event with its own clock.
 */
const SENDABLE_EVENTS = {
  START: event('START'),
  SET_ACTIVITY: event('SET_ACTIVITY', { activity: anyText, progress }, ['activity']),
  SPAWN_TASK: event('SPAWN_TASK', { description: text, taskId: taskIdText }, ['description']),
  TASK_EVENT: event('TASK_EVENT', { taskId: text, kind: { type: 'string', enum: TASK_REPORT_TYPES }, progress, result: anyText, error: anyText }, ['taskId', 'kind']),
  ASK_QUESTION: event('ASK_QUESTION', { question: text, questionId: questionIdText, choices, context: anyText }, ['question']),
  ANSWER: event('ANSWER', { questionId: text, answer: anyText }, ['questionId', 'answer']),
  WITHDRAW_QUESTION: event('WITHDRAW_QUESTION', { questionId: text, reason: anyText }, ['questionId']),
  SET_PHASE: event('SET_PHASE', { phase: text }, ['phase']),
  HEARTBEAT: event('HEARTBEAT', { activity: anyText, progress }),
  COMPLETE: event('COMPLETE', { summary: anyText }),
  FAIL: event('FAIL', { error: text }, ['error']),
  INTERRUPT: event('INTERRUPT', { reason: text }, ['reason']),
  RESUME: event('RESUME'),
  SEND_MESSAGE: event('SEND_MESSAGE', { to: supervisorIdText, body: text, messageId: messageIdText }, ['to', 'body']),
} satisfies Record<SupervisorCommand['type'], object>;

export const SENDABLE_EVENT_TYPES = Object.keys(SENDABLE_EVENTS) as Array<SupervisorCommand['type']>;

export const eventBody = {
  type: 'object',
  discriminator: { propertyName: 'type' },
  required: ['type'],
  oneOf: Object.values(SENDABLE_EVENTS),
} as const;

/** What the event schema lets through: a command (never RESTORED; `at` is refused, so the daemon stamps it). */
export type EventBody = SupervisorCommand;
