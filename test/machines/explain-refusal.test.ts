// explainRefusal must agree with snapshot.can() for every state and every kind of event, accepted or not.

import { describe, expect, it } from 'vitest';
import { transition } from 'xstate';
import { explainRefusal, supervisorMachine, type SupervisorEvent, type SupervisorSnapshot } from '../../src/machines/index.js';
import { at, ev, run, snapshotsByState } from './supervisor-fixtures.js';

function snapshots(): [string, SupervisorSnapshot][] {
  const byState = snapshotsByState();
  const extra: Record<string, SupervisorSnapshot> = {
    'working with a running task': run(byState.waiting_for_tasks, ev.activity('reviewing')),
    'working after answers and finished tasks': run(
      byState.waiting_for_user,
      ev.spawn('t1'),
      ev.answer('q1', 'formal'),
      ev.taskFailed('t1'),
    ),
    'waiting_for_user with two questions and a task': run(byState.waiting_for_user, ev.ask('q2'), ev.spawn('t1')),
    'interrupted while waiting for the user': run(byState.waiting_for_user, ev.interrupt()),
    'interrupted before start': run(byState.initializing, ev.interrupt()),
    'failed with pending questions': run(byState.waiting_for_user, ev.fail()),
  };
  return [...Object.entries(byState), ...Object.entries(extra)];
}

const events: SupervisorEvent[] = [
  ev.start(),
  ev.activity('drafting'),
  ev.activity('drafting', 50),
  ev.activity('drafting', 140),
  ev.spawn('t1'),
  ev.spawn('t2'),
  ev.spawn(''),
  ev.taskProgress('t1', 30),
  ev.taskProgress('t1', -5),
  { type: 'TASK_EVENT', taskId: 't1', kind: 'progress', at: at(4) },
  ev.taskCompleted('t1'),
  ev.taskFailed('t1'),
  ev.taskCompleted('t9'),
  ev.ask('q1'),
  ev.ask('q2'),
  ev.ask('q3', ''),
  ev.ask('q3', 'Pick one', []),
  ev.answer('q1', 'formal'),
  ev.answer('q1', 'funny'),
  ev.answer('q2', 'anything'),
  ev.answer('q9', 'x'),
  ev.phase('review'),
  ev.phase('planning'),
  ev.phase(''),
  ev.heartbeat(),
  { type: 'HEARTBEAT', at: at(9), progress: 200 },
  ev.complete(),
  ev.fail(),
  ev.fail(''),
  ev.interrupt(),
  ev.resume(),
  ev.restored(false),
  ev.restored(true),
];

describe('explainRefusal', () => {
  for (const [name, snapshot] of snapshots()) {
    it(`agrees with can() for every event in ${name}`, () => {
      for (const event of events) {
        const reason = explainRefusal(snapshot, event);
        expect({ event, accepted: reason === null }).toEqual({ event, accepted: snapshot.can(event) });
        if (reason !== null) expect(reason.length).toBeGreaterThan(0);
      }
    });
  }

  it('accepts exactly the events that transition() acts on', () => {
    for (const [, snapshot] of snapshots()) {
      for (const event of events) {
        const [next] = transition(supervisorMachine, snapshot, event);
        if (explainRefusal(snapshot, event) !== null) expect(next).toBe(snapshot);
        else expect(next).not.toBe(snapshot);
      }
    }
  });
});
