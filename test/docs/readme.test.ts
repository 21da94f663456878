import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { supervisorMermaidDiagram } from '../../src/machines/supervisor-diagram.js';
import { SUPERVISOR_EVENT_TYPES } from '../../src/machines/supervisor-types.js';
import { SUPERVISOR_STATES } from '../../src/domain/supervisor-state.js';
import { CRASH_POINT_NAMES } from '../../src/runtime/crash-points.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('shows the state diagram generated from the machine (regenerate it from supervisorMermaidDiagram() when the machine changes)', () => {
    const block = /<!-- supervisor-diagram:start -->\n```mermaid\n([\s\S]*?)\n```\n<!-- supervisor-diagram:end -->/.exec(readme);
    expect(block?.[1]).toBe(supervisorMermaidDiagram().trimEnd());
  });

  it('documents every event and every state', () => {
    for (const event of SUPERVISOR_EVENT_TYPES) expect(readme).toContain(`\`${event}\``);
    for (const state of SUPERVISOR_STATES) expect(readme).toContain(state);
  });

  it('lists every crash point in the crash-point table', () => {
    const section = readme.split('### Crash points')[1]?.split('\n## ')[0] ?? '';
    for (const name of CRASH_POINT_NAMES) expect(section).toContain(`| \`${name}\` |`);
  });

  it('gives the two quick-start commands first', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'));
    expect(quickStart).toMatch(/npm ci && npm run demo[\s\S]*npm test/);
  });
});
