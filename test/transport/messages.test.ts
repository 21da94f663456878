// Message validators: what a publisher may send, and the problem each mistake is reported with.

import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../src/transport/errors.js';
import {
  decodeJson,
  encodeMessage,
  parseAnswerMessage,
  parseQuestionMessage,
  parseStateChangeMessage,
  parseTaskEventMessage,
  parseTaskSpawnMessage,
  type ParseResult,
} from '../../src/transport/messages.js';

const AT = '2026-11-24T10:00:00.000Z';

function problemsOf<T>(result: ParseResult<T>): string[] {
  if (result.ok) throw new Error(`expected problems, got ${JSON.stringify(result.value)}`);
  return result.problems;
}

const fullQuestion = {
  v: 1,
  supervisorId: 's1',
  questionId: 'q1',
  question: 'Deploy now?',
  choices: ['yes', 'no'],
  context: 'release 1.2',
  askedAt: AT,
  deliveryCount: 1,
  redelivery: false,
};

describe('answer messages', () => {
  it('accept the minimum a hand-typed `nats pub` sends: questionId and answer, v defaulting to 1', () => {
    expect(parseAnswerMessage({ questionId: 'q1', answer: 'yes' })).toEqual({ ok: true, value: { v: 1, questionId: 'q1', answer: 'yes' } });
  });

  it('accept every field, ignore unknown extra fields and treat null optionals as absent', () => {
    const full = { v: 1, questionId: 'q1', answer: 'yes', supervisorId: 's1', answeredBy: 'ana', at: AT, extra: { any: 1 } };
    expect(parseAnswerMessage(full)).toEqual({
      ok: true,
      value: { v: 1, questionId: 'q1', answer: 'yes', supervisorId: 's1', answeredBy: 'ana', at: AT },
    });
    expect(parseAnswerMessage({ questionId: 'q1', answer: 'yes', supervisorId: null })).toEqual({
      ok: true,
      value: { v: 1, questionId: 'q1', answer: 'yes' },
    });
  });

  it.each([
    [{ answer: 'yes' }, 'questionId must be a non-empty string; it is missing'],
    [{ questionId: '', answer: 'yes' }, 'questionId must be a non-empty string, got ""'],
    [{ questionId: 7, answer: 'yes' }, 'questionId must be a non-empty string, got 7'],
    [{ questionId: 'q1' }, 'answer must be a non-empty string; it is missing'],
    [{ questionId: 'q1', answer: ['yes'] }, 'answer must be a non-empty string, got ["yes"]'],
    [{ questionId: 'q1', answer: 'yes', v: 2 }, 'v must be 1'],
    [{ questionId: 'q1', answer: 'yes', supervisorId: 5 }, 'supervisorId must be a non-empty string'],
    [{ questionId: 'q1', answer: 'yes', answeredBy: '' }, 'answeredBy must be a non-empty string'],
    [{ questionId: 'q1', answer: 'yes', at: 'yesterday' }, 'at must be an ISO-8601 timestamp string'],
  ])('reject %j naming the field', (input, problem) => {
    const problems = problemsOf(parseAnswerMessage(input));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });

  it('report every bad field at once', () => {
    expect(problemsOf(parseAnswerMessage({ v: 3 }))).toEqual([
      'v must be 1 (this runtime reads version 1 messages), got 3',
      'questionId must be a non-empty string; it is missing',
      'answer must be a non-empty string; it is missing',
    ]);
  });
});

describe('raw input', () => {
  it('bytes and text are parsed as JSON first', () => {
    const bytes = encodeMessage({ questionId: 'q1', answer: 'yes' });
    expect(parseAnswerMessage(bytes).ok).toBe(true);
    expect(parseAnswerMessage('{"questionId":"q1","answer":"yes"}').ok).toBe(true);
  });

  it.each([
    [new TextEncoder().encode('{"questionId": '), 'message is not valid JSON'],
    ['yes', 'message is not valid JSON'],
    [null, 'message must be a JSON object, got null'],
    [42, 'message must be a JSON object, got a number'],
    [[{ questionId: 'q1', answer: 'yes' }], 'message must be a JSON object, got an array'],
    ['"a string"', 'message must be a JSON object, got a string'],
  ])('reject %j', (input, problem) => {
    expect(problemsOf(parseAnswerMessage(input))[0]).toContain(problem);
  });

  it('decodeJson throws MalformedMessageError naming the subject, never a SyntaxError', () => {
    expect(() => decodeJson(new TextEncoder().encode('nope'), 'supervisors.s1.answers')).toThrow(MalformedMessageError);
    expect(() => decodeJson(new TextEncoder().encode('nope'), 'supervisors.s1.answers')).toThrow(/on supervisors\.s1\.answers: message is not valid JSON/);
    expect(decodeJson(encodeMessage({ a: [1] }))).toEqual({ a: [1] });
  });
});

describe('task event messages', () => {
  it('accept the minimum: taskId and type', () => {
    expect(parseTaskEventMessage({ taskId: 't1', type: 'completed' })).toEqual({ ok: true, value: { v: 1, taskId: 't1', type: 'completed' } });
  });

  it('accept every field', () => {
    const full = { v: 1, taskId: 't1', type: 'failed', progress: 100, result: '', error: 'disk full', at: AT };
    expect(parseTaskEventMessage(full)).toEqual({ ok: true, value: full });
  });

  it.each([
    [{ type: 'progress' }, 'taskId must be a non-empty string'],
    [{ taskId: 't1' }, 'type must be one of progress, completed, failed; it is missing'],
    [{ taskId: 't1', type: 'done' }, 'type must be one of progress, completed, failed, got "done"'],
    [{ taskId: 't1', type: 'progress', progress: 101 }, 'progress must be an integer from 0 to 100, got 101'],
    [{ taskId: 't1', type: 'progress', progress: -1 }, 'progress must be an integer from 0 to 100'],
    [{ taskId: 't1', type: 'progress', progress: 12.5 }, 'progress must be an integer from 0 to 100, got 12.5'],
    [{ taskId: 't1', type: 'progress', progress: '50' }, 'progress must be an integer from 0 to 100, got "50"'],
    [{ taskId: 't1', type: 'completed', result: 42 }, 'result must be a string'],
    [{ taskId: 't1', type: 'failed', error: {} }, 'error must be a string'],
    [{ taskId: 't1', type: 'failed', at: 12 }, 'at must be an ISO-8601 timestamp string'],
  ])('reject %j naming the field', (input, problem) => {
    const problems = problemsOf(parseTaskEventMessage(input));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });
});

describe('question messages', () => {
  it('accept a full question, and null choices and context', () => {
    expect(parseQuestionMessage(fullQuestion)).toEqual({ ok: true, value: fullQuestion });
    const open = { ...fullQuestion, choices: null, context: null, deliveryCount: 3, redelivery: true };
    expect(parseQuestionMessage(open)).toEqual({ ok: true, value: open });
  });

  it.each([
    ['supervisorId', undefined, 'supervisorId must be a non-empty string'],
    ['questionId', '', 'questionId must be a non-empty string'],
    ['question', 5, 'question must be a non-empty string'],
    ['choices', undefined, 'choices is required (use null for none)'],
    ['choices', ['yes', 3], 'choices must be null or an array of non-empty strings'],
    ['choices', 'yes', 'choices must be null or an array of non-empty strings'],
    ['context', undefined, 'context is required (use null for none)'],
    ['context', 3, 'context must be a string'],
    ['askedAt', 'now', 'askedAt must be an ISO-8601 timestamp string'],
    ['deliveryCount', 0, 'deliveryCount must be an integer >= 1'],
    ['redelivery', 'no', 'redelivery must be true or false'],
    ['v', 0, 'v must be 1'],
  ])('reject %s = %j naming the field', (field, value, problem) => {
    const input: Record<string, unknown> = { ...fullQuestion, [field]: value };
    if (value === undefined) delete input[field];
    const problems = problemsOf(parseQuestionMessage(input));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });
});

describe('task spawn messages', () => {
  const spawn = { v: 1, taskId: 't1', supervisorId: 's1', description: 'index the repo', spawnedAt: AT };

  it('accept a full spawn message', () => {
    expect(parseTaskSpawnMessage(spawn)).toEqual({ ok: true, value: spawn });
  });

  it.each([
    ['taskId', 'taskId must be a non-empty string'],
    ['supervisorId', 'supervisorId must be a non-empty string'],
    ['description', 'description must be a non-empty string'],
    ['spawnedAt', 'spawnedAt must be an ISO-8601 timestamp string'],
  ])('reject a missing %s', (field, problem) => {
    const input: Record<string, unknown> = { ...spawn };
    delete input[field];
    expect(problemsOf(parseTaskSpawnMessage(input))).toEqual([`${problem}${field === 'spawnedAt' ? ' (like 2025-01-31T12:00:00.000Z)' : ''}; it is missing`]);
  });
});

describe('state change messages', () => {
  const change = { v: 1, supervisorId: 's1', from: 'working', to: 'waiting_for_user', phase: 'asking', at: AT };

  it('accept a change, and from: null for a new supervisor', () => {
    expect(parseStateChangeMessage(change)).toEqual({ ok: true, value: change });
    expect(parseStateChangeMessage({ ...change, from: null, to: 'initializing' }).ok).toBe(true);
  });

  it.each([
    [{ from: 'sleeping' }, 'from must be a supervisor state'],
    [{ from: undefined }, 'from is required (use null for none)'],
    [{ to: 'done' }, 'to must be a supervisor state'],
    [{ phase: 3 }, 'phase must be a string'],
    [{ at: '' }, 'at must be an ISO-8601 timestamp string'],
    [{ supervisorId: '  ' }, 'supervisorId must be a non-empty string'],
  ])('reject %j naming the field', (override, problem) => {
    const input: Record<string, unknown> = { ...change, ...override };
    for (const [key, value] of Object.entries(override)) if (value === undefined) delete input[key];
    const problems = problemsOf(parseStateChangeMessage(input));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });
});

describe('encodeMessage', () => {
  it('round-trips through the validators', () => {
    const bytes = encodeMessage(fullQuestion);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(parseQuestionMessage(bytes)).toEqual({ ok: true, value: fullQuestion });
  });
});
