// The README diagram is generated from the machine; these tests pin its shape, not its every line.

import { describe, expect, it } from 'vitest';
import { SUPERVISOR_STATES } from '../../src/domain/supervisor-state.js';
import { supervisorMermaidDiagram } from '../../src/machines/index.js';

describe('supervisorMermaidDiagram', () => {
  const diagram = supervisorMermaidDiagram();
  const lines = diagram.split('\n');

  it('is a Mermaid state diagram that starts in initializing', () => {
    expect(lines[0]).toBe('stateDiagram-v2');
    expect(lines[1]).toBe('  [*] --> initializing');
  });

  it('names every state', () => {
    for (const state of SUPERVISOR_STATES) expect(diagram).toMatch(new RegExp(`\\b${state}\\b`));
  });

  it.each([
    'initializing --> idle : START',
    'idle --> working : SET_ACTIVITY',
    'idle --> waiting_for_tasks : SPAWN_TASK',
    'working --> waiting_for_user : ASK_QUESTION',
    'waiting_for_user --> working : ANSWER',
    'waiting_for_user --> waiting_for_tasks : ANSWER',
    'waiting_for_tasks --> working : TASK_EVENT',
    'waiting_for_tasks --> working : SET_ACTIVITY',
    'working --> completed : COMPLETE',
    'waiting_for_tasks --> interrupted : INTERRUPT',
    'interrupted --> waiting_for_tasks : RESUME',
    'interrupted --> failed : FAIL',
    'completed --> [*]',
    'failed --> [*]',
  ])('draws %s', (edge) => {
    expect(lines).toContain(`  ${edge}`);
  });

  it('draws only changes of state: no loops and no impossible spawn into working', () => {
    for (const line of lines) {
      const match = /^ {2}(\w+) --> (\w+) : \w+$/.exec(line);
      if (match) expect(match[1]).not.toBe(match[2]);
    }
    expect(lines).not.toContain('  idle --> working : SPAWN_TASK');
  });

  it('lists every edge once and is the same on every call', () => {
    expect(new Set(lines).size).toBe(lines.length);
    expect(supervisorMermaidDiagram()).toBe(diagram);
  });

  it('leaves final states only to [*]', () => {
    expect(lines.filter((line) => /^ {2}(completed|failed) --> /.test(line))).toEqual(['  completed --> [*]', '  failed --> [*]']);
  });
});
