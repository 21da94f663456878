// Generates the README's Mermaid state diagram from the machine itself, so the picture cannot drift from the code.

import { SUPERVISOR_EVENT_TYPES } from './supervisor-types.js';
import { supervisorMachine } from './supervisor-machine.js';

interface Edge {
  source: string;
  target: string;
  event: string;
}

/** Known events in their documented order; anything else after them, alphabetically. */
function eventRank(event: string): [number, string] {
  const index = (SUPERVISOR_EVENT_TYPES as readonly string[]).indexOf(event);
  return [index === -1 ? SUPERVISOR_EVENT_TYPES.length : index, event];
}

// Not localeCompare: the README text must be identical on every machine, whatever its locale.
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A `stateDiagram-v2` of every change of state. Transitions that stay in their state
 * (heartbeats, restorations, progress, a second question) are left out: drawn as loops they would bury the lifecycle.
 */
export function supervisorMermaidDiagram(): string {
  const states = Object.values(supervisorMachine.root.states);
  const stateRank = new Map(states.map((node, index) => [node.key, index]));
  const edges = new Map<string, Edge>();
  for (const node of states) {
    for (const [event, transitions] of node.transitions) {
      for (const transition of transitions) {
        for (const target of transition.target ?? []) {
          if (target.key === node.key) continue;
          const edge = { source: node.key, target: target.key, event };
          edges.set(`${edge.source} ${edge.target} ${edge.event}`, edge);
        }
      }
    }
  }
  const rank = (state: string) => stateRank.get(state) ?? Number.MAX_SAFE_INTEGER;
  const ordered = [...edges.values()].sort((a, b) => {
    const [aEvent, aName] = eventRank(a.event);
    const [bEvent, bName] = eventRank(b.event);
    return (
      rank(a.source) - rank(b.source) ||
      aEvent - bEvent ||
      compareCodeUnits(aName, bName) ||
      rank(a.target) - rank(b.target)
    );
  });
  const initial = supervisorMachine.root.initial.target.map((node) => `  [*] --> ${node.key}`);
  const changes = ordered.map((edge) => `  ${edge.source} --> ${edge.target} : ${edge.event}`);
  const terminal = states.filter((node) => node.type === 'final').map((node) => `  ${node.key} --> [*]`);
  return ['stateDiagram-v2', ...initial, ...changes, ...terminal].join('\n');
}
