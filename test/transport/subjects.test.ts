// Subject spelling, prefixes, stream names and NATS wildcard matching.

import { describe, expect, it } from 'vitest';
import { InvalidSubjectError } from '../../src/transport/errors.js';
import {
  ALL_ANSWERS,
  ALL_TASK_EVENTS,
  answersSubject,
  normalizeSubjectPrefix,
  parseSupervisorSubject,
  parseSupervisorSubjectParts,
  parseTaskEventsSubject,
  questionsSubject,
  stateSubject,
  streamKeyFor,
  streamNames,
  streamSubject,
  subjectMatches,
  TASK_SPAWN_SUBJECT,
  taskEventsSubject,
  taskSpawnSubject,
  withPrefix,
} from '../../src/transport/subjects.js';

describe('subjects', () => {
  it('are spelled supervisors.<id>.<kind> and tasks.<id>.events, with an optional prefix', () => {
    expect(questionsSubject('s1')).toBe('supervisors.s1.questions');
    expect(answersSubject('s1')).toBe('supervisors.s1.answers');
    expect(stateSubject('s1')).toBe('supervisors.s1.state');
    expect(taskEventsSubject('t-1')).toBe('tasks.t-1.events');
    expect(TASK_SPAWN_SUBJECT).toBe('tasks.spawn');
    expect(answersSubject('s1', 't123.')).toBe('t123.supervisors.s1.answers');
    expect(answersSubject('s1', 't123')).toBe('t123.supervisors.s1.answers');
    expect(taskSpawnSubject('a.b.')).toBe('a.b.tasks.spawn');
    expect(withPrefix(ALL_ANSWERS, 't123.')).toBe('t123.supervisors.*.answers');
    expect(withPrefix(ALL_TASK_EVENTS)).toBe('tasks.*.events');
  });

  it('refuse ids that would change the subject structure', () => {
    for (const bad of ['', 'a.b', '*', '>', 'a b']) {
      expect(() => answersSubject(bad)).toThrow(InvalidSubjectError);
    }
    expect(() => normalizeSubjectPrefix('a..b')).toThrow(InvalidSubjectError);
    expect(() => normalizeSubjectPrefix('*.')).toThrow(InvalidSubjectError);
  });

  it('parse back to the id, or null for anything else', () => {
    expect(parseSupervisorSubject('supervisors.s1.answers')).toBe('s1');
    expect(parseSupervisorSubjectParts('supervisors.s1.state')).toEqual({ supervisorId: 's1', kind: 'state' });
    expect(parseSupervisorSubject('t9.supervisors.s1.questions', 't9.')).toBe('s1');
    expect(parseSupervisorSubject('supervisors.s1.other')).toBeNull();
    expect(parseSupervisorSubject('supervisors.s1.answers.extra')).toBeNull();
    expect(parseSupervisorSubject('t9.supervisors.s1.answers')).toBeNull();
    expect(parseTaskEventsSubject('tasks.t1.events')).toBe('t1');
    expect(parseTaskEventsSubject('tasks.spawn')).toBeNull();
    expect(parseTaskEventsSubject('supervisors.t1.events')).toBeNull();
  });

  it('derive stream names and stream subjects from the prefix', () => {
    expect(streamNames()).toEqual({ supervisors: 'SR_SUPERVISORS', tasks: 'SR_TASKS' });
    expect(streamNames('t123.')).toEqual({ supervisors: 'SR_T123_SUPERVISORS', tasks: 'SR_T123_TASKS' });
    expect(streamNames('a.b:c.')).toEqual({ supervisors: 'SR_A_B_C_SUPERVISORS', tasks: 'SR_A_B_C_TASKS' });
    expect(streamSubject('supervisors', 't1.')).toBe('t1.supervisors.>');
    expect(streamSubject('tasks')).toBe('tasks.>');
    expect(streamKeyFor(ALL_ANSWERS)).toBe('supervisors');
    expect(streamKeyFor(ALL_TASK_EVENTS)).toBe('tasks');
    expect(() => streamKeyFor('other.x')).toThrow(InvalidSubjectError);
    expect(streamKeyFor(withPrefix(ALL_ANSWERS, 't1.'), 't1.')).toBe('supervisors');
    expect(streamKeyFor(taskEventsSubject('x', 't1'), 't1.')).toBe('tasks');
    // A subject without the transport's prefix belongs to none of its streams.
    expect(() => streamKeyFor(answersSubject('s1'), 't1.')).toThrow(/must be under "t1.supervisors." or "t1.tasks."/);
  });

  it('match wildcards like NATS: * one token, > one or more', () => {
    expect(subjectMatches('supervisors.*.answers', 'supervisors.s1.answers')).toBe(true);
    expect(subjectMatches('supervisors.*.answers', 'supervisors.s1.questions')).toBe(false);
    expect(subjectMatches('supervisors.*.answers', 'supervisors.s1.x.answers')).toBe(false);
    expect(subjectMatches('supervisors.>', 'supervisors.s1.answers')).toBe(true);
    expect(subjectMatches('supervisors.>', 'supervisors')).toBe(false);
    expect(subjectMatches('tasks.spawn', 'tasks.spawn')).toBe(true);
    expect(subjectMatches('tasks.spawn', 'tasks.spawn.x')).toBe(false);
    expect(subjectMatches('tasks.*', 'tasks.spawn')).toBe(true);
  });
});
