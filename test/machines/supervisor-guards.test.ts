// The checks behind the machine's guards, tested alone: each returns null or a reason a human can act on.

import { describe, expect, it } from 'vitest';
import {
  SUPERVISOR_CHECKS,
  SUPERVISOR_EVENT_TYPES,
  checkComplete,
  checkEvent,
  initialSupervisorContext,
  type SupervisorContext,
} from '../../src/machines/index.js';
import { INPUT, at } from './supervisor-fixtures.js';

const base = initialSupervisorContext(INPUT);

function withPendingQuestion(context: SupervisorContext): SupervisorContext {
  return {
    ...context,
    pendingQuestions: [
      { id: 'q1', question: '?', choices: null, context: null, askedAt: at(1), deliveryCount: 1, lastDeliveredAt: at(1) },
    ],
  };
}

describe('supervisor checks', () => {
  it('has one check for every event type', () => {
    expect(Object.keys(SUPERVISOR_CHECKS).sort()).toEqual([...SUPERVISOR_EVENT_TYPES].sort());
  });

  it('refuses to complete while a question is pending, whatever the state', () => {
    expect(checkComplete(withPendingQuestion(base), { type: 'COMPLETE', at: at(2) })).toBe(
      'cannot complete while questions are pending (q1)',
    );
  });

  it('allows completing when nothing is in flight', () => {
    expect(checkComplete(base, { type: 'COMPLETE', at: at(2) })).toBeNull();
  });

  it('dispatches on the event type', () => {
    expect(checkEvent(base, { type: 'SET_PHASE', phase: 'planning', at: at(1) })).toBe('phase is already planning');
    expect(checkEvent(base, { type: 'RESUME', at: at(1) })).toBeNull();
  });
});
