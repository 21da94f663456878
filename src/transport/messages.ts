// Versioned JSON messages carried over the transport, with hand-written validators that name every bad field.
//
// Every message we publish has `v: 1`. On receipt `v` may be left out (it defaults to 1) so a
// hand-typed `nats pub supervisors.s1.answers '{"questionId":"q1","answer":"yes"}'` works;
// when present it must be 1. Unknown extra fields are accepted and dropped from the parsed value.
// Optional fields sent as `null` count as absent (other languages serialise "none" that way).

import { isSupervisorState, type SupervisorState } from '../domain/supervisor-state.js';
import { MalformedMessageError } from './errors.js';

export const MESSAGE_VERSION = 1 as const;

/** supervisors.<id>.questions: a supervisor asks its human. Re-published on restore with redelivery: true. */
export interface QuestionMessage {
  v: 1;
  supervisorId: string;
  questionId: string;
  question: string;
  choices: string[] | null;
  context: string | null;
  askedAt: string;
  /** 1 when first asked; each re-delivery adds 1. */
  deliveryCount: number;
  redelivery: boolean;
}

/** supervisors.<id>.answers: the human's answer. */
export interface AnswerMessage {
  v: 1;
  questionId: string;
  answer: string;
  supervisorId?: string;
  answeredBy?: string;
  at?: string;
}

/** tasks.spawn: a supervisor asks a worker daemon to start a task. */
export interface TaskSpawnMessage {
  v: 1;
  taskId: string;
  supervisorId: string;
  description: string;
  spawnedAt: string;
}

export const TASK_EVENT_TYPES = ['progress', 'completed', 'failed'] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

/** tasks.<taskId>.events: a worker reports on a task. */
export interface TaskEventMessage {
  v: 1;
  taskId: string;
  type: TaskEventType;
  /** Integer 0–100. */
  progress?: number;
  result?: string;
  error?: string;
  at?: string;
}

/** supervisors.<id>.state: a supervisor moved between states (for observers; not used to restore). */
export interface StateChangeMessage {
  v: 1;
  supervisorId: string;
  /** null for the first state of a new supervisor. */
  from: SupervisorState | null;
  to: SupervisorState;
  phase: string;
  at: string;
}

/** supervisors.<to>.messages: a message from one supervisor to another, published from the sender's outbox. */
export interface SupervisorMessage {
  v: typeof MESSAGE_VERSION;
  from: string;
  to: string;
  /** The sender's id for it; with `from`, what the receiver takes in once. */
  messageId: string;
  body: string;
  sentAt: string;
}

export type TransportMessage = QuestionMessage | AnswerMessage | TaskSpawnMessage | TaskEventMessage | StateChangeMessage | SupervisorMessage;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export function encodeMessage(message: object): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/** Bytes → JSON value; throws MalformedMessageError (never a SyntaxError) when they are not JSON. */
export function decodeJson(data: Uint8Array, subject: string | null = null): unknown {
  const parsed = parseJsonText(decoder.decode(data));
  if (!parsed.ok) throw new MalformedMessageError(subject, parsed.problems);
  return parsed.value;
}

export function parseQuestionMessage(data: unknown): ParseResult<QuestionMessage> {
  return parseWith(data, (f) => {
    const value: QuestionMessage = {
      v: f.version(),
      supervisorId: f.id('supervisorId'),
      questionId: f.id('questionId'),
      question: f.text('question'),
      choices: f.choices('choices'),
      context: f.nullableString('context'),
      askedAt: f.timestamp('askedAt'),
      deliveryCount: f.integer('deliveryCount', 1, Number.MAX_SAFE_INTEGER),
      redelivery: f.boolean('redelivery'),
    };
    return value;
  });
}

export function parseAnswerMessage(data: unknown): ParseResult<AnswerMessage> {
  return parseWith(data, (f) => {
    const value: AnswerMessage = { v: f.version(), questionId: f.id('questionId'), answer: f.text('answer') };
    if (f.has('supervisorId')) value.supervisorId = f.id('supervisorId');
    if (f.has('answeredBy')) value.answeredBy = f.text('answeredBy');
    if (f.has('at')) value.at = f.timestamp('at');
    return value;
  });
}

export function parseSupervisorMessage(data: unknown): ParseResult<SupervisorMessage> {
  return parseWith(data, (f) => ({
    v: f.version(),
    from: f.id('from'),
    to: f.id('to'),
    messageId: f.id('messageId'),
    body: f.text('body'),
    sentAt: f.timestamp('sentAt'),
  }));
}

export function parseTaskSpawnMessage(data: unknown): ParseResult<TaskSpawnMessage> {
  return parseWith(data, (f) => ({
    v: f.version(),
    taskId: f.id('taskId'),
    supervisorId: f.id('supervisorId'),
    description: f.text('description'),
    spawnedAt: f.timestamp('spawnedAt'),
  }));
}

export function parseTaskEventMessage(data: unknown): ParseResult<TaskEventMessage> {
  return parseWith(data, (f) => {
    const value: TaskEventMessage = { v: f.version(), taskId: f.id('taskId'), type: f.taskEventType('type') };
    if (f.has('progress')) value.progress = f.integer('progress', 0, 100);
    if (f.has('result')) value.result = f.string('result');
    if (f.has('error')) value.error = f.string('error');
    if (f.has('at')) value.at = f.timestamp('at');
    return value;
  });
}

export function parseStateChangeMessage(data: unknown): ParseResult<StateChangeMessage> {
  return parseWith(data, (f) => ({
    v: f.version(),
    supervisorId: f.id('supervisorId'),
    from: f.has('from') ? f.state('from') : f.requireNull('from'),
    to: f.state('to'),
    phase: f.string('phase'),
    at: f.timestamp('at'),
  }));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

/** Raw bytes or text are parsed as JSON first; anything else is taken as the parsed value. */
function parseWith<T>(data: unknown, read: (fields: FieldReader) => T): ParseResult<T> {
  let value = data;
  if (data instanceof Uint8Array || typeof data === 'string') {
    const parsed = parseJsonText(typeof data === 'string' ? data : decoder.decode(data));
    if (!parsed.ok) return parsed;
    value = parsed.value;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { ok: false, problems: [`message must be a JSON object, got ${kind}`] };
  }
  const fields = new FieldReader(value as Record<string, unknown>);
  const result = read(fields);
  return fields.problems.length === 0 ? { ok: true, value: result } : { ok: false, problems: fields.problems };
}

function parseJsonText(text: string): ParseResult<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, problems: [`message is not valid JSON (${(error as Error).message})`] };
  }
}

/** Reads one field at a time, recording a problem instead of throwing, so every bad field is reported at once. */
class FieldReader {
  readonly problems: string[] = [];
  constructor(private readonly object: Record<string, unknown>) {}

  has(field: string): boolean {
    return this.object[field] !== undefined && this.object[field] !== null;
  }

  version(): 1 {
    const v = this.object.v;
    if (v !== undefined && v !== MESSAGE_VERSION) {
      this.problems.push(`v must be ${MESSAGE_VERSION} (this runtime reads version ${MESSAGE_VERSION} messages), got ${JSON.stringify(v)}`);
    }
    return MESSAGE_VERSION;
  }

  id(field: string): string {
    return this.check(field, (v) => typeof v === 'string' && v.trim() !== '', 'must be a non-empty string', '');
  }

  text(field: string): string {
    return this.id(field);
  }

  string(field: string): string {
    return this.check(field, (v) => typeof v === 'string', 'must be a string', '');
  }

  nullableString(field: string): string | null {
    if (!this.has(field)) return this.requireNull(field);
    return this.string(field);
  }

  boolean(field: string): boolean {
    return this.check(field, (v) => typeof v === 'boolean', 'must be true or false', false);
  }

  integer(field: string, min: number, max: number): number {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    return this.check(field, (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max, `must be an integer ${range}`, min);
  }

  timestamp(field: string): string {
    return this.check(
      field,
      (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)),
      'must be an ISO-8601 timestamp string (like 2025-01-31T12:00:00.000Z)',
      '',
    );
  }

  choices(field: string): string[] | null {
    if (!this.has(field)) return this.requireNull(field);
    return this.check(
      field,
      (v) => Array.isArray(v) && v.every((c) => typeof c === 'string' && c.trim() !== ''),
      'must be null or an array of non-empty strings',
      [],
    );
  }

  taskEventType(field: string): TaskEventType {
    return this.check(
      field,
      (v) => typeof v === 'string' && (TASK_EVENT_TYPES as readonly string[]).includes(v),
      `must be one of ${TASK_EVENT_TYPES.join(', ')}`,
      'progress',
    );
  }

  state(field: string): SupervisorState {
    return this.check(field, isSupervisorState, 'must be a supervisor state (see SUPERVISOR_STATES)', 'initializing');
  }

  /** A nullable field must be present as null, not left out, so a typo in its name is caught. */
  requireNull(field: string): null {
    if (this.object[field] !== null) this.problems.push(`${field} is required (use null for none)`);
    return null;
  }

  private check<T>(field: string, valid: (value: unknown) => boolean, expectation: string, fallback: T): T {
    const value = this.object[field];
    if (value === undefined || value === null) {
      this.problems.push(`${field} ${expectation}; it is missing`);
      return fallback;
    }
    if (!valid(value)) {
      this.problems.push(`${field} ${expectation}, got ${describe(value)}`);
      return fallback;
    }
    return value as T;
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
