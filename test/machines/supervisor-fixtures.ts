// Builders for supervisor snapshots and events, driven only through the machine's pure transition functions.

import { expect } from 'vitest';
import { initialTransition, transition } from 'xstate';
import {
  effectsOf,
  explainRefusal,
  supervisorMachine,
  type SupervisorEffect,
  type SupervisorEvent,
  type SupervisorInput,
  type SupervisorSnapshot,
} from '../../src/machines/index.js';

export const INPUT: SupervisorInput = {
  supervisorId: 'sup-1',
  name: 'Docs writer',
  createdAt: '2025-01-01T00:00:00.000Z',
};

/** A distinct, increasing ISO time per minute, so tests can tell which event wrote what. */
export function at(minute: number): string {
  return new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString();
}

export function initial(input: SupervisorInput = INPUT): SupervisorSnapshot {
  return initialTransition(supervisorMachine, input)[0];
}

export interface Step {
  snapshot: SupervisorSnapshot;
  effects: SupervisorEffect[];
}

/** Applies an event the machine must accept; a refusal fails the test with the machine's own reason. */
export function apply(snapshot: SupervisorSnapshot, event: SupervisorEvent): Step {
  const refusal = explainRefusal(snapshot, event);
  if (refusal !== null) throw new Error(`${event.type} refused in ${snapshot.value}: ${refusal}`);
  const [next, actions] = transition(supervisorMachine, snapshot, event);
  return { snapshot: next, effects: effectsOf(actions) };
}

export function run(snapshot: SupervisorSnapshot, ...events: SupervisorEvent[]): SupervisorSnapshot {
  return events.reduce((current, event) => apply(current, event).snapshot, snapshot);
}

/** Asserts the whole refusal contract: can() is false, the reason matches, and nothing changes or is emitted. */
export function expectRefused(snapshot: SupervisorSnapshot, event: SupervisorEvent, reason: string | RegExp): void {
  expect(snapshot.can(event)).toBe(false);
  const explained = explainRefusal(snapshot, event);
  if (typeof reason === 'string') expect(explained).toBe(reason);
  else expect(explained).toMatch(reason);
  const [next, actions] = transition(supervisorMachine, snapshot, event);
  expect(next.value).toBe(snapshot.value);
  expect(next.context).toEqual(snapshot.context);
  expect(effectsOf(actions)).toEqual([]);
}

export const ev = {
  start: (minute = 1): SupervisorEvent => ({ type: 'START', at: at(minute) }),
  activity: (activity: string, progress?: number, minute = 2): SupervisorEvent =>
    progress === undefined
      ? { type: 'SET_ACTIVITY', activity, at: at(minute) }
      : { type: 'SET_ACTIVITY', activity, progress, at: at(minute) },
  spawn: (taskId: string, description = `work for ${taskId}`, minute = 3): SupervisorEvent => ({
    type: 'SPAWN_TASK',
    taskId,
    description,
    at: at(minute),
  }),
  taskProgress: (taskId: string, progress: number, minute = 4): SupervisorEvent => ({
    type: 'TASK_EVENT',
    taskId,
    kind: 'progress',
    progress,
    at: at(minute),
  }),
  taskCompleted: (taskId: string, result = `${taskId} done`, minute = 5): SupervisorEvent => ({
    type: 'TASK_EVENT',
    taskId,
    kind: 'completed',
    result,
    at: at(minute),
  }),
  taskFailed: (taskId: string, error = `${taskId} broke`, minute = 5): SupervisorEvent => ({
    type: 'TASK_EVENT',
    taskId,
    kind: 'failed',
    error,
    at: at(minute),
  }),
  ask: (questionId: string, question = `question ${questionId}?`, choices?: string[], minute = 6): SupervisorEvent =>
    choices === undefined
      ? { type: 'ASK_QUESTION', questionId, question, at: at(minute) }
      : { type: 'ASK_QUESTION', questionId, question, choices, at: at(minute) },
  answer: (questionId: string, answer: string, minute = 7): SupervisorEvent => ({
    type: 'ANSWER',
    questionId,
    answer,
    at: at(minute),
  }),
  phase: (phase: string, minute = 8): SupervisorEvent => ({ type: 'SET_PHASE', phase, at: at(minute) }),
  heartbeat: (minute = 9): SupervisorEvent => ({ type: 'HEARTBEAT', at: at(minute) }),
  complete: (summary?: string, minute = 10): SupervisorEvent =>
    summary === undefined ? { type: 'COMPLETE', at: at(minute) } : { type: 'COMPLETE', summary, at: at(minute) },
  fail: (error = 'model quota exhausted', minute = 11): SupervisorEvent => ({ type: 'FAIL', error, at: at(minute) }),
  withdraw: (questionId: string, reason?: string, minute = 8): SupervisorEvent => ({
    type: 'WITHDRAW_QUESTION',
    questionId,
    ...(reason !== undefined ? { reason } : {}),
    at: at(minute),
  }),
  interrupt: (reason = 'daemon shutting down', minute = 12): SupervisorEvent => ({
    type: 'INTERRUPT',
    reason,
    at: at(minute),
  }),
  resume: (minute = 13): SupervisorEvent => ({ type: 'RESUME', at: at(minute) }),
  restored: (redeliver = false, minute = 14): SupervisorEvent => ({
    type: 'RESTORED',
    at: at(minute),
    source: 'daemon_restart',
    contextMessage: 'You were restored after a daemon restart.',
    redeliver,
  }),
};

/** One snapshot per state, each reached the ordinary way. */
export function snapshotsByState(): Record<SupervisorSnapshot['value'], SupervisorSnapshot> {
  const idle = run(initial(), ev.start());
  return {
    initializing: initial(),
    idle,
    working: run(idle, ev.activity('outlining')),
    waiting_for_user: run(idle, ev.ask('q1', 'Which tone?', ['formal', 'casual'])),
    waiting_for_tasks: run(idle, ev.spawn('t1')),
    completed: run(idle, ev.complete('nothing to do')),
    failed: run(idle, ev.fail()),
    interrupted: run(idle, ev.spawn('t1'), ev.interrupt()),
  };
}
