// Subject names, stream names and NATS-style subject matching: the one place that knows how subjects are spelled.
//
// Every subject carries the deployment's prefix (default ''; tests use their own, like `t123.`, to share
// one NATS server): build subjects with these functions and the same prefix the transport was given.
// Transports take and deliver these full subjects unchanged; their prefix only picks the streams.

import { InvalidSubjectError } from './errors.js';

export const SUPERVISORS_ROOT = 'supervisors';
export const TASKS_ROOT = 'tasks';

export const TASK_SPAWN_SUBJECT = 'tasks.spawn';

export const ALL_SUPERVISOR_SUBJECTS = 'supervisors.>';
export const ALL_QUESTIONS = 'supervisors.*.questions';
export const ALL_ANSWERS = 'supervisors.*.answers';
export const ALL_STATE_CHANGES = 'supervisors.*.state';
export const ALL_MESSAGES = 'supervisors.*.messages';
export const ALL_TASK_SUBJECTS = 'tasks.>';
export const ALL_TASK_EVENTS = 'tasks.*.events';

export type SupervisorSubjectKind = 'questions' | 'answers' | 'state' | 'messages';
const SUPERVISOR_SUBJECT_KINDS: readonly string[] = ['questions', 'answers', 'state', 'messages'];

/** The two streams every transport creates; each owns every subject under its root. */
export type StreamKey = 'supervisors' | 'tasks';

export function questionsSubject(supervisorId: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${SUPERVISORS_ROOT}.${subjectToken(supervisorId, 'supervisorId')}.questions`;
}

export function answersSubject(supervisorId: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${SUPERVISORS_ROOT}.${subjectToken(supervisorId, 'supervisorId')}.answers`;
}

export function stateSubject(supervisorId: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${SUPERVISORS_ROOT}.${subjectToken(supervisorId, 'supervisorId')}.state`;
}

/** Where messages to a supervisor go (from other supervisors' outboxes). */
export function messagesSubject(supervisorId: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${SUPERVISORS_ROOT}.${subjectToken(supervisorId, 'supervisorId')}.messages`;
}

export function taskSpawnSubject(prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${TASK_SPAWN_SUBJECT}`;
}

export function taskEventsSubject(taskId: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${TASKS_ROOT}.${subjectToken(taskId, 'taskId')}.events`;
}

/** `supervisors.<id>.(questions|answers|state)` → its id and kind; anything else → null. */
export function parseSupervisorSubjectParts(
  subject: string,
  prefix = '',
): { supervisorId: string; kind: SupervisorSubjectKind } | null {
  const tokens = logicalTokens(subject, prefix);
  if (tokens === null || tokens.length !== 3) return null;
  const [root, id, kind] = tokens as [string, string, string];
  if (root !== SUPERVISORS_ROOT || !isPlainToken(id) || !SUPERVISOR_SUBJECT_KINDS.includes(kind)) return null;
  return { supervisorId: id, kind: kind as SupervisorSubjectKind };
}

/** `supervisors.<id>.(questions|answers|state)` → the supervisor id; anything else → null. */
export function parseSupervisorSubject(subject: string, prefix = ''): string | null {
  return parseSupervisorSubjectParts(subject, prefix)?.supervisorId ?? null;
}

/** `tasks.<taskId>.events` → the task id; anything else → null. */
export function parseTaskEventsSubject(subject: string, prefix = ''): string | null {
  const tokens = logicalTokens(subject, prefix);
  if (tokens === null || tokens.length !== 3) return null;
  const [root, id, kind] = tokens as [string, string, string];
  if (root !== TASKS_ROOT || kind !== 'events' || !isPlainToken(id)) return null;
  return id;
}

/**
 * '' stays ''; anything else must be dot-separated plain tokens and gets exactly one trailing dot
 * (`t123` and `t123.` both mean `t123.`).
 */
export function normalizeSubjectPrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  const trimmed = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  const tokens = trimmed.split('.');
  if (!tokens.every(isPlainToken)) {
    throw new InvalidSubjectError(
      prefix,
      'a subject prefix must be dot-separated tokens without "*", ">" or spaces (for example "test42.")',
    );
  }
  return `${trimmed}.`;
}

/** JetStream stream names for a prefix: `SR_SUPERVISORS`, or `SR_T123_SUPERVISORS` for prefix `t123.`. */
export function streamNames(prefix = ''): Record<StreamKey, string> {
  const normalized = normalizeSubjectPrefix(prefix);
  const middle = normalized
    .slice(0, -1)
    .toUpperCase()
    .replace(/[^A-Z0-9_-]+/g, '_');
  const base = middle === '' ? 'SR_' : `SR_${middle}_`;
  return { supervisors: `${base}SUPERVISORS`, tasks: `${base}TASKS` };
}

/** The wire subjects a stream captures (`<prefix>supervisors.>`). */
export function streamSubject(key: StreamKey, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${key === 'supervisors' ? ALL_SUPERVISOR_SUBJECTS : ALL_TASK_SUBJECTS}`;
}

/** A wildcard constant (or any logical subject) with the prefix in front: `withPrefix(ALL_ANSWERS, 't1.')`. */
export function withPrefix(subject: string, prefix = ''): string {
  return `${normalizeSubjectPrefix(prefix)}${subject}`;
}

/**
 * Which stream a subject or filter belongs to: after the prefix, its first token. Throws
 * InvalidSubjectError for anything outside `<prefix>supervisors.>` and `<prefix>tasks.>`: such a
 * message would be stored nowhere.
 */
export function streamKeyFor(subjectOrFilter: string, prefix = ''): StreamKey {
  const normalized = normalizeSubjectPrefix(prefix);
  const tokens = subjectOrFilter.startsWith(normalized) ? subjectOrFilter.slice(normalized.length).split('.') : [];
  if (tokens.length >= 2 && tokens.every((t) => t !== '')) {
    if (tokens[0] === SUPERVISORS_ROOT) return 'supervisors';
    if (tokens[0] === TASKS_ROOT) return 'tasks';
  }
  throw new InvalidSubjectError(
    subjectOrFilter,
    `it belongs to no stream of this transport: subjects must be under "${normalized}supervisors." or "${normalized}tasks."; ` +
      `build them with src/transport/subjects.ts and the transport's subjectPrefix ("${normalized}")`,
  );
}

/** A published subject: tokens only, no wildcards. */
export function assertPublishSubject(subject: string, prefix = ''): StreamKey {
  const key = streamKeyFor(subject, prefix);
  if (subject.split('.').some((t) => t === '*' || t === '>' || /\s/.test(t))) {
    throw new InvalidSubjectError(subject, 'a published subject cannot contain wildcards or whitespace');
  }
  return key;
}

/** A filter: `*` matches one token, `>` (last token only) one or more. */
export function assertFilterSubject(filter: string, prefix = ''): StreamKey {
  const key = streamKeyFor(filter, prefix);
  const tokens = filter.slice(normalizeSubjectPrefix(prefix).length).split('.');
  tokens.forEach((t, i) => {
    if (/\s/.test(t) || (t.includes('>') && (t !== '>' || i !== tokens.length - 1)) || (t.includes('*') && t !== '*')) {
      throw new InvalidSubjectError(filter, '"*" must be a whole token and ">" only the whole last token');
    }
  });
  return key;
}

/** NATS subject matching, as the server does it. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return f.length === s.length;
}

function logicalTokens(subject: string, prefix: string): string[] | null {
  const normalized = normalizeSubjectPrefix(prefix);
  if (!subject.startsWith(normalized)) return null;
  return subject.slice(normalized.length).split('.');
}

function isPlainToken(token: string): boolean {
  return /^[^\s.*>]+$/.test(token);
}

function subjectToken(value: string, field: string): string {
  if (typeof value !== 'string' || !isPlainToken(value)) {
    throw new InvalidSubjectError(
      String(value),
      `${field} must be a non-empty string without ".", "*", ">" or spaces to be used in a subject`,
    );
  }
  return value;
}
