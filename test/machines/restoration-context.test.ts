// The restoration context message says what became of each open question: delivered again, still with the human as
// it was, or answered while the supervisor was down; and its next step counts only what is still open.

import { describe, expect, it } from 'vitest';
import { buildRestorationContextMessage, type RestorationContextInput } from '../../src/machines/restoration-context.js';
import { ev, initial, run } from './supervisor-fixtures.js';

function input(patch: Partial<RestorationContextInput> = {}): RestorationContextInput {
  const waiting = run(initial(), ev.start(), ev.ask('q1', 'Which region?'), ev.ask('q2', 'Deploy?', ['yes', 'no']));
  return {
    context: waiting.context,
    state: String(waiting.value),
    source: 'daemon_restart',
    recoveryAction: 'restore',
    checkpointSeq: null,
    downSince: null,
    restoredAt: '2026-01-01T00:30:00.000Z',
    tasks: [],
    redelivered: waiting.context.pendingQuestions,
    warnings: [],
    ...patch,
  };
}

describe('restoration context message', () => {
  it('lists the questions delivered again and counts them in its next step', () => {
    const message = buildRestorationContextMessage(input());
    expect(message).toContain('Questions still open (delivered again to the human):\n- q1: Which region?\n- q2: Deploy? [yes / no]');
    expect(message).not.toContain('the human has them already');
    expect(message).toMatch(/Next: Wait for the human's answer to 2 open question\(s\); they were delivered again\.$/);
  });

  it('a question not delivered again is listed as still with the human, and the next step does not claim it was sent again', () => {
    const base = input();
    const message = buildRestorationContextMessage({ ...base, redelivered: base.context.pendingQuestions.filter((question) => question.id === 'q1') });
    expect(message).toContain('Questions still open (delivered again to the human):\n- q1: Which region?\nQuestions still open (the human has them already):\n- q2: Deploy? [yes / no]');
    expect(message).toMatch(/Next: Wait for the human's answer to 2 open question\(s\)\.$/);
  });

  it('with every answer already recorded, the next step is to take them, not to wait for the human', () => {
    const message = buildRestorationContextMessage(input({ redelivered: [], answerWaiting: ['q1', 'q2'] }));
    expect(message).not.toContain('Questions still open');
    expect(message).toContain('Questions answered while you were down (the answer reaches you next):\n- q1: Which region?\n- q2: Deploy? [yes / no]');
    expect(message).toMatch(/Next: Take the 2 answer\(s\) recorded while you were down; they reach you next\.$/);
  });

  it('one answer recorded, one question delivered again: only the open one is waited for', () => {
    const base = input();
    const message = buildRestorationContextMessage({ ...base, redelivered: base.context.pendingQuestions.filter((question) => question.id === 'q2'), answerWaiting: ['q1'] });
    expect(message).toMatch(/Next: Wait for the human's answer to 1 open question\(s\); they were delivered again\.$/);
  });
});
