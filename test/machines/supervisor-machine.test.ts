// Specification of the supervisor machine: every transition, every refusal, and the effects each one implies.

import { describe, expect, it, vi } from 'vitest';
import { createActor, initialTransition, transition } from 'xstate';
import { SUPERVISOR_STATES } from '../../src/domain/supervisor-state.js';
import {
  SUPERVISOR_MACHINE_VERSION,
  deriveWaitingState,
  effectsOf,
  explainRefusal,
  supervisorMachine,
  SupervisorInputMissingError,
  transitionSupervisor,
  type SupervisorEvent,
  type SupervisorSnapshot,
} from '../../src/machines/index.js';
import { SNAPSHOT_MIGRATIONS, migrateSnapshot, openWorkOnly } from '../../src/machines/snapshot-migrations.js';
import { INPUT, apply, at, ev, expectRefused, initial, run, snapshotsByState } from './supervisor-fixtures.js';

describe('transitionSupervisor (one inert scope for the process)', () => {
  const events: SupervisorEvent[] = [
    ev.start(), ev.activity('reading', 40), ev.spawn('t1'), ev.spawn('t9'), ev.taskProgress('t1', 50), ev.taskCompleted('t1'), ev.taskFailed('t1'),
    ev.ask('q1', 'Which tone?', ['formal', 'casual']), ev.ask('q9'), ev.answer('q1', 'formal'), ev.withdraw('q1', 'moot'), ev.phase('drafting'),
    ev.heartbeat(), ev.complete('done'), ev.fail(), ev.interrupt(), ev.resume(), ev.restored(true),
  ];

  it('returns exactly what XState\'s transition() returns, for every event in every state (refused ones too), call after call', () => {
    let compared = 0;
    for (const [state, snapshot] of Object.entries(snapshotsByState())) {
      for (const event of events) {
        const [expected, expectedActions] = transition(supervisorMachine, snapshot, event);
        const [actual, actions] = transitionSupervisor(snapshot, event);
        const label = `${event.type} in ${state}`;
        expect(actual.value, label).toBe(expected.value);
        expect(actual.status, label).toBe(expected.status);
        expect(actual.context, label).toEqual(expected.context);
        expect(supervisorMachine.getPersistedSnapshot(actual), label).toEqual(supervisorMachine.getPersistedSnapshot(expected));
        expect(actions.map(({ type, params }) => ({ type, params })), label).toEqual(expectedActions.map(({ type, params }) => ({ type, params })));
        expect(effectsOf(actions), label).toEqual(effectsOf(expectedActions));
        compared += 1;
      }
    }
    expect(compared).toBe(8 * events.length);
  });

  it('consecutive calls keep each call\'s actions apart: none leaks into the next', () => {
    const idle = run(initial(), ev.start());
    const [, first] = transitionSupervisor(idle, ev.spawn('t1'));
    const [, second] = transitionSupervisor(idle, ev.ask('q1'));
    expect(effectsOf(first).map((effect) => effect.type)).not.toEqual(effectsOf(second).map((effect) => effect.type));
    expect(effectsOf(first)).toEqual(effectsOf(transition(supervisorMachine, idle, ev.spawn('t1'))[1]));
  });
});

const started = () => run(initial(), ev.start());
const working = () => run(started(), ev.activity('outlining'));
const waitingForTasks = () => run(started(), ev.spawn('t1', 'research sources'));
const waitingForUser = () => run(started(), ev.ask('q1', 'Which tone?', ['formal', 'casual']));

function conversationOf(effects: ReturnType<typeof apply>['effects']) {
  return effects.flatMap((effect) => (effect.type === 'appendConversation' ? [effect.params.entry] : []));
}

describe('the machine', () => {
  it('has exactly the SUPERVISOR_STATES as its flat top-level states', () => {
    expect(Object.keys(supervisorMachine.root.states)).toEqual([...SUPERVISOR_STATES]);
    for (const node of Object.values(supervisorMachine.root.states)) {
      expect(Object.keys(node.states)).toEqual([]);
    }
  });

  it('makes completed and failed final and nothing else', () => {
    const finals = Object.values(supervisorMachine.root.states)
      .filter((node) => node.type === 'final')
      .map((node) => node.key);
    expect(finals).toEqual(['completed', 'failed']);
  });

  it('is version 2 (the snapshot holds open work only)', () => {
    expect(SUPERVISOR_MACHINE_VERSION).toBe(2);
  });

  it('starts in initializing with a context built from its input and defaults', () => {
    const [snapshot, actions] = initialTransition(supervisorMachine, INPUT);
    expect(snapshot.value).toBe('initializing');
    expect(actions).toEqual([]);
    expect(snapshot.context).toEqual({
      supervisorId: 'sup-1',
      name: 'Docs writer',
      phase: 'planning',
      currentActivity: null,
      progress: 0,
      errorMessage: null,
      tasks: [],
      pendingQuestions: [],
      answeredQuestionCount: 0,
      completedTaskCount: 0,
      failedTaskCount: 0,
      conversationLength: 0,
      restorationCount: 0,
      lastRestoredAt: null,
      restorationSource: null,
      lastHeartbeatAt: null,
      interruptedFrom: null,
      createdAt: '2025-01-01T00:00:00.000Z',
    });
  });

  it('will not start a new supervisor without input, and says what to pass', () => {
    const [snapshot] = initialTransition(supervisorMachine);
    expect(snapshot.status).toBe('error');
    expect(snapshot.error).toBeInstanceOf(SupervisorInputMissingError);
    expect(String(snapshot.error)).toContain('needs input { supervisorId, name, createdAt }');
  });

  it('takes the phase from its input when given', () => {
    expect(initial({ ...INPUT, phase: 'drafting' }).context.phase).toBe('drafting');
  });

  it('never changes the snapshot it transitions from, so a runtime can drop a transition it failed to commit', () => {
    const before = run(waitingForUser(), ev.spawn('t1'), ev.ask('q2'));
    const copy = structuredClone(before.context);
    for (const event of [ev.answer('q1', 'formal'), ev.taskCompleted('t1'), ev.restored(true), ev.heartbeat(), ev.interrupt()]) {
      transition(supervisorMachine, before, event);
    }
    expect(before.context).toEqual(copy);
    expect(before.value).toBe('waiting_for_user');
  });

  it('computes the same snapshot and effects every time for the same events', () => {
    const events: SupervisorEvent[] = [ev.start(), ev.spawn('t1'), ev.ask('q1'), ev.answer('q1', 'yes'), ev.taskCompleted('t1')];
    const once = events.reduce<{ snapshot: SupervisorSnapshot; effects: unknown[] }>(
      (acc, event) => {
        const step = apply(acc.snapshot, event);
        return { snapshot: step.snapshot, effects: [...acc.effects, ...step.effects] };
      },
      { snapshot: initial(), effects: [] },
    );
    const twice = events.reduce<{ snapshot: SupervisorSnapshot; effects: unknown[] }>(
      (acc, event) => {
        const step = apply(acc.snapshot, event);
        return { snapshot: step.snapshot, effects: [...acc.effects, ...step.effects] };
      },
      { snapshot: initial(), effects: [] },
    );
    expect(supervisorMachine.getPersistedSnapshot(twice.snapshot)).toEqual(
      supervisorMachine.getPersistedSnapshot(once.snapshot),
    );
    expect(twice.effects).toEqual(once.effects);
  });
});

describe('START', () => {
  it('moves initializing to idle and records that the supervisor started', () => {
    const { snapshot, effects } = apply(initial(), ev.start(1));
    expect(snapshot.value).toBe('idle');
    expect(effects).toEqual([
      {
        type: 'appendConversation',
        params: {
          entry: { seq: 0, role: 'system', content: 'Supervisor "Docs writer" started in phase planning.', at: at(1) },
        },
      },
    ]);
    expect(snapshot.context.conversationLength).toBe(1);
  });

  it('is refused once the supervisor has started', () => {
    expectRefused(started(), ev.start(), 'event START is not accepted in state idle');
  });
});

describe('SET_ACTIVITY', () => {
  it('moves idle to working and records the activity and progress', () => {
    const { snapshot, effects } = apply(started(), ev.activity('outlining', 10));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.currentActivity).toBe('outlining');
    expect(snapshot.context.progress).toBe(10);
    expect(effects).toEqual([]);
  });

  it('keeps the previous progress when none is given', () => {
    const snapshot = run(started(), ev.activity('outlining', 30), ev.activity('drafting'));
    expect(snapshot.context).toMatchObject({ currentActivity: 'drafting', progress: 30 });
  });

  it('keeps a working supervisor working', () => {
    expect(apply(working(), ev.activity('drafting')).snapshot.value).toBe('working');
  });

  it('moves waiting_for_tasks to working: the supervisor works on its own while tasks run', () => {
    const { snapshot } = apply(waitingForTasks(), ev.activity('reviewing'));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.tasks[0]?.status).toBe('running');
  });

  it('records the activity but keeps waiting_for_user, because questions block', () => {
    const { snapshot } = apply(waitingForUser(), ev.activity('thinking'));
    expect(snapshot.value).toBe('waiting_for_user');
    expect(snapshot.context.currentActivity).toBe('thinking');
  });

  it.each([
    [140, 'progress 140 is outside 0–100'],
    [-1, 'progress -1 is outside 0–100'],
    [12.5, 'progress 12.5 is not a whole number'],
    [Number.NaN, 'progress NaN is outside 0–100'],
  ])('refuses progress %s', (progress, reason) => {
    expectRefused(started(), ev.activity('outlining', progress), reason);
  });

  it('accepts the bounds 0 and 100', () => {
    expect(apply(started(), ev.activity('a', 0)).snapshot.context.progress).toBe(0);
    expect(apply(started(), ev.activity('a', 100)).snapshot.context.progress).toBe(100);
  });

  it('is refused before START and while interrupted', () => {
    expectRefused(initial(), ev.activity('x'), 'event SET_ACTIVITY is not accepted in state initializing');
    expectRefused(run(started(), ev.interrupt()), ev.activity('x'), 'event SET_ACTIVITY is not accepted in state interrupted');
  });
});

describe('SPAWN_TASK', () => {
  it('adds a running task, asks the runtime to start it, and waits for tasks', () => {
    const { snapshot, effects } = apply(started(), ev.spawn('t1', 'research sources', 3));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.tasks).toEqual([
      {
        id: 't1',
        description: 'research sources',
        status: 'running',
        progress: 0,
        result: null,
        error: null,
        spawnedAt: at(3),
        finishedAt: null,
      },
    ]);
    expect(effects).toEqual([
      { type: 'startTask', params: { taskId: 't1', description: 'research sources' } },
      {
        type: 'appendConversation',
        params: { entry: { seq: 1, role: 'assistant', content: 'Spawned task t1: research sources', at: at(3) } },
      },
    ]);
  });

  it('moves working to waiting_for_tasks', () => {
    expect(apply(working(), ev.spawn('t1')).snapshot.value).toBe('waiting_for_tasks');
  });

  it('keeps waiting_for_tasks when another task is spawned', () => {
    const { snapshot } = apply(waitingForTasks(), ev.spawn('t2'));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.tasks.map((task) => task.id)).toEqual(['t1', 't2']);
  });

  it('keeps waiting_for_user while questions are pending', () => {
    const { snapshot, effects } = apply(waitingForUser(), ev.spawn('t1'));
    expect(snapshot.value).toBe('waiting_for_user');
    expect(effects.map((effect) => effect.type)).toEqual(['startTask', 'appendConversation']);
  });

  it('refuses the id of a task that is still running', () => {
    expectRefused(waitingForTasks(), ev.spawn('t1'), 'task t1 was already spawned (it is running)');
  });

  it('accepts the id of a finished task: it left the context, so only the runtime can refuse it', () => {
    // The runtime refuses this: supervisor_tasks keeps finished tasks and its id is the primary key.
    const finished = run(waitingForTasks(), ev.taskCompleted('t1'));
    expect(finished.context.tasks).toEqual([]);
    expect(finished.can(ev.spawn('t1'))).toBe(true);
    expect(explainRefusal(finished, ev.spawn('t1'))).toBeNull();
    const { snapshot, effects } = apply(finished, ev.spawn('t1', 'again', 6));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.tasks).toEqual([
      { id: 't1', description: 'again', status: 'running', progress: 0, result: null, error: null, spawnedAt: at(6), finishedAt: null },
    ]);
    expect(snapshot.context.completedTaskCount).toBe(1);
    expect(effects[0]).toEqual({ type: 'startTask', params: { taskId: 't1', description: 'again' } });
  });

  it('refuses an empty task id', () => {
    expectRefused(started(), ev.spawn(''), 'taskId must not be empty');
  });

  it('is refused before START and while interrupted', () => {
    expectRefused(initial(), ev.spawn('t1'), 'event SPAWN_TASK is not accepted in state initializing');
    expectRefused(run(started(), ev.interrupt()), ev.spawn('t1'), 'event SPAWN_TASK is not accepted in state interrupted');
  });
});

describe('TASK_EVENT', () => {
  it('updates only the task progress on a progress report', () => {
    const before = waitingForTasks();
    const { snapshot, effects } = apply(before, ev.taskProgress('t1', 40));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.tasks[0]?.progress).toBe(40);
    expect(snapshot.context.progress).toBe(before.context.progress);
    expect(snapshot.context.conversationLength).toBe(before.context.conversationLength);
    // Its row gets the new figure in the same save point; nothing else is implied.
    expect(effects).toEqual([{ type: 'taskProgressed', params: { taskId: 't1', task: snapshot.context.tasks[0] } }]);
  });

  it('finishes the task and settles in working when the last task completes', () => {
    const before = run(waitingForTasks(), ev.taskProgress('t1', 40));
    const { snapshot, effects } = apply(before, ev.taskCompleted('t1', '12 sources', 5));
    expect(snapshot.value).toBe('working');
    // Open work only: the finished task leaves the context; a counter stays, the effect carries the task to its row.
    expect(snapshot.context.tasks).toEqual([]);
    expect(snapshot.context.completedTaskCount).toBe(1);
    expect(snapshot.context.failedTaskCount).toBe(0);
    expect(effects).toEqual([
      {
        type: 'appendConversation',
        params: { entry: { seq: 2, role: 'tool', content: 'Task t1 completed: 12 sources', at: at(5) } },
      },
      {
        type: 'taskFinished',
        params: {
          taskId: 't1',
          status: 'completed',
          task: {
            id: 't1',
            description: 'research sources',
            status: 'completed',
            progress: 100,
            result: '12 sources',
            error: null,
            spawnedAt: at(3),
            finishedAt: at(5),
          },
        },
      },
    ]);
  });

  it('records a failure with its error and settles in working', () => {
    const before = run(waitingForTasks(), ev.taskProgress('t1', 40));
    const { snapshot, effects } = apply(before, ev.taskFailed('t1', 'timeout'));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.tasks).toEqual([]);
    expect(snapshot.context.failedTaskCount).toBe(1);
    expect(snapshot.context.completedTaskCount).toBe(0);
    expect(conversationOf(effects).map((entry) => entry.content)).toEqual(['Task t1 failed: timeout']);
    // A failed task keeps the progress it last reported.
    expect(effects.at(-1)).toEqual({
      type: 'taskFinished',
      params: {
        taskId: 't1',
        status: 'failed',
        task: {
          id: 't1',
          description: 'research sources',
          status: 'failed',
          progress: 40,
          result: null,
          error: 'timeout',
          spawnedAt: at(3),
          finishedAt: at(5),
        },
      },
    });
  });

  it('keeps only the still-running tasks and counts each outcome', () => {
    const busy = run(waitingForTasks(), ev.spawn('t2'), ev.spawn('t3'));
    const snapshot = run(busy, ev.taskCompleted('t1'), ev.taskFailed('t3'));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.tasks.map((task) => task.id)).toEqual(['t2']);
    expect(snapshot.context.completedTaskCount).toBe(1);
    expect(snapshot.context.failedTaskCount).toBe(1);
  });

  it('says only that the task finished when no result or error is given', () => {
    const event: SupervisorEvent = { type: 'TASK_EVENT', taskId: 't1', kind: 'completed', at: at(5) };
    const { effects } = apply(waitingForTasks(), event);
    expect(conversationOf(effects).map((entry) => entry.content)).toEqual(['Task t1 completed.']);
  });

  it('keeps waiting_for_tasks while other tasks still run', () => {
    const { snapshot } = apply(run(waitingForTasks(), ev.spawn('t2')), ev.taskCompleted('t1'));
    expect(snapshot.value).toBe('waiting_for_tasks');
  });

  it('leaves working and waiting_for_user as they are when a task finishes', () => {
    const busy = run(waitingForTasks(), ev.activity('reviewing'));
    expect(apply(busy, ev.taskCompleted('t1')).snapshot.value).toBe('working');
    const asking = run(waitingForTasks(), ev.ask('q1'));
    expect(asking.value).toBe('waiting_for_user');
    expect(apply(asking, ev.taskCompleted('t1')).snapshot.value).toBe('waiting_for_user');
  });

  it('records a task outcome while interrupted and stays interrupted', () => {
    const { snapshot, effects } = apply(run(waitingForTasks(), ev.interrupt()), ev.taskCompleted('t1'));
    expect(snapshot.value).toBe('interrupted');
    expect(snapshot.context.tasks).toEqual([]);
    expect(snapshot.context.completedTaskCount).toBe(1);
    expect(effects.map((effect) => effect.type)).toEqual(['appendConversation', 'taskFinished']);
    expect(effects.at(-1)).toMatchObject({ params: { taskId: 't1', status: 'completed', task: { status: 'completed', progress: 100 } } });
  });

  it('refuses a second delivery of the same outcome, so duplicates are harmless', () => {
    // The finished task has left the context; the runtime, reading supervisor_tasks, names the first outcome.
    const done = run(waitingForTasks(), ev.spawn('t2'), ev.taskCompleted('t1'));
    expect(done.value).toBe('waiting_for_tasks');
    expectRefused(done, ev.taskCompleted('t1'), 'task t1 is not running here (never spawned, or already finished)');
    const failed = run(waitingForTasks(), ev.spawn('t2'), ev.taskFailed('t1'));
    expectRefused(failed, ev.taskProgress('t1', 50), 'task t1 is not running here (never spawned, or already finished)');
    const settled = run(waitingForTasks(), ev.taskCompleted('t1'));
    expect(settled.value).toBe('working');
    expectRefused(settled, ev.taskFailed('t1'), 'task t1 is not running here (never spawned, or already finished)');
  });

  it('refuses an unknown task', () => {
    expectRefused(waitingForTasks(), ev.taskCompleted('t9'), 'task t9 is not running here (never spawned, or already finished)');
  });

  it('refuses progress outside 0–100 and a progress report without progress', () => {
    expectRefused(waitingForTasks(), ev.taskProgress('t1', 150), 'progress 150 is outside 0–100');
    expectRefused(
      waitingForTasks(),
      { type: 'TASK_EVENT', taskId: 't1', kind: 'progress', at: at(4) },
      'progress event for task t1 carries no progress',
    );
  });

  it('is refused before START', () => {
    expectRefused(initial(), ev.taskCompleted('t1'), 'event TASK_EVENT is not accepted in state initializing');
  });
});

describe('ASK_QUESTION', () => {
  it('adds a pending question, asks the runtime to deliver it, and waits for the user', () => {
    const event: SupervisorEvent = {
      type: 'ASK_QUESTION',
      questionId: 'q1',
      question: 'Which tone?',
      choices: ['formal', 'casual'],
      context: 'The audience is new users.',
      at: at(6),
    };
    const { snapshot, effects } = apply(started(), event);
    const question = {
      id: 'q1',
      question: 'Which tone?',
      choices: ['formal', 'casual'],
      context: 'The audience is new users.',
      askedAt: at(6),
      deliveryCount: 1,
      lastDeliveredAt: at(6),
    };
    expect(snapshot.value).toBe('waiting_for_user');
    expect(snapshot.context.pendingQuestions).toEqual([question]);
    expect(effects).toEqual([
      { type: 'deliverQuestion', params: { question, redelivery: false } },
      { type: 'appendConversation', params: { entry: { seq: 1, role: 'assistant', content: 'Which tone?', at: at(6) } } },
    ]);
  });

  it('stores absent choices and context as null', () => {
    const { snapshot } = apply(started(), ev.ask('q1'));
    expect(snapshot.context.pendingQuestions[0]).toMatchObject({ choices: null, context: null });
  });

  it('moves working and waiting_for_tasks to waiting_for_user', () => {
    expect(apply(working(), ev.ask('q1')).snapshot.value).toBe('waiting_for_user');
    expect(apply(waitingForTasks(), ev.ask('q1')).snapshot.value).toBe('waiting_for_user');
  });

  it('keeps waiting_for_user when a second question is asked', () => {
    const { snapshot } = apply(waitingForUser(), ev.ask('q2'));
    expect(snapshot.value).toBe('waiting_for_user');
    expect(snapshot.context.pendingQuestions.map((question) => question.id)).toEqual(['q1', 'q2']);
  });

  it('refuses a question id that is still pending', () => {
    expectRefused(waitingForUser(), ev.ask('q1'), 'question q1 is already pending');
  });

  it('accepts the id of an answered question: it left the context, so only the runtime can refuse it', () => {
    // The runtime refuses this: supervisor_questions keeps answered questions with their answers.
    const answered = run(waitingForUser(), ev.answer('q1', 'formal'));
    expect(answered.context.pendingQuestions).toEqual([]);
    expect(answered.can(ev.ask('q1'))).toBe(true);
    expect(explainRefusal(answered, ev.ask('q1'))).toBeNull();
    const { snapshot } = apply(answered, ev.ask('q1', 'Which tone, really?', undefined, 8));
    expect(snapshot.value).toBe('waiting_for_user');
    expect(snapshot.context.pendingQuestions.map((question) => [question.id, question.question])).toEqual([['q1', 'Which tone, really?']]);
    expect(snapshot.context.answeredQuestionCount).toBe(1);
  });

  it('refuses an empty question, an empty id, and an empty list of choices', () => {
    expectRefused(started(), ev.ask('q1', '  '), 'question must not be empty');
    expectRefused(started(), ev.ask('', 'Why?'), 'questionId must not be empty');
    expectRefused(started(), ev.ask('q1', 'Why?', []), 'choices, when given, must not be empty');
  });

  it('is refused before START and while interrupted', () => {
    expectRefused(initial(), ev.ask('q1'), 'event ASK_QUESTION is not accepted in state initializing');
    expectRefused(run(started(), ev.interrupt()), ev.ask('q1'), 'event ASK_QUESTION is not accepted in state interrupted');
  });
});

describe('WITHDRAW_QUESTION', () => {
  it('takes a pending question back, notes it in the conversation, tells the runtime, and settles', () => {
    const { snapshot, effects } = apply(waitingForUser(), ev.withdraw('q1', 'no longer relevant'));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.pendingQuestions).toEqual([]);
    // Withdrawn is not answered.
    expect(snapshot.context.answeredQuestionCount).toBe(0);
    expect(effects).toEqual([
      { type: 'appendConversation', params: { entry: { seq: 2, role: 'system', content: 'Question q1 was withdrawn: no longer relevant; it no longer needs an answer.', at: at(8) } } },
      {
        type: 'questionWithdrawn',
        params: { questionId: 'q1', question: 'Which tone?', choices: ['formal', 'casual'], context: null, askedAt: at(6), withdrawnAt: at(8), reason: 'no longer relevant' },
      },
    ]);
  });

  it('keeps waiting for the other questions, and for running tasks', () => {
    expect(apply(run(waitingForUser(), ev.ask('q2')), ev.withdraw('q1')).snapshot.value).toBe('waiting_for_user');
    expect(apply(run(waitingForTasks(), ev.ask('q1')), ev.withdraw('q1')).snapshot.value).toBe('waiting_for_tasks');
  });

  it('is refused for a question that is not pending, and an answer after it is refused too', () => {
    expectRefused(waitingForUser(), ev.withdraw('q9'), 'question q9 is not pending (never asked, already answered, or already withdrawn)');
    const withdrawn = run(waitingForUser(), ev.ask('q2'), ev.withdraw('q1'));
    expectRefused(withdrawn, ev.withdraw('q1'), 'question q1 is not pending (never asked, already answered, or already withdrawn)');
    expectRefused(withdrawn, ev.answer('q1', 'formal'), 'question q1 is not pending (never asked, or already answered)');
    expectRefused(working(), ev.withdraw('q1'), 'event WITHDRAW_QUESTION is not accepted in state working');
  });

  it('is accepted while interrupted, which stays interrupted', () => {
    const { snapshot } = apply(run(waitingForUser(), ev.interrupt()), ev.withdraw('q1'));
    expect(snapshot.value).toBe('interrupted');
    expect(snapshot.context.pendingQuestions).toEqual([]);
  });
});

describe('ANSWER', () => {
  it('records the answer, tells the runtime, and goes back to working', () => {
    const { snapshot, effects } = apply(waitingForUser(), ev.answer('q1', 'formal', 7));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.pendingQuestions).toEqual([]);
    // The answered question leaves the snapshot (open work only); a counter stays, the effect carries it to its row.
    expect(snapshot.context.answeredQuestionCount).toBe(1);
    expect(effects).toEqual([
      { type: 'appendConversation', params: { entry: { seq: 2, role: 'user', content: 'formal', at: at(7) } } },
      {
        type: 'answerReceived',
        params: { questionId: 'q1', question: 'Which tone?', choices: ['formal', 'casual'], context: null, askedAt: at(6), answer: 'formal', answeredAt: at(7) },
      },
    ]);
  });

  it('goes to waiting_for_tasks when tasks are still running', () => {
    const asking = run(waitingForTasks(), ev.ask('q1'));
    expect(apply(asking, ev.answer('q1', 'yes')).snapshot.value).toBe('waiting_for_tasks');
  });

  it('keeps waiting_for_user while other questions are pending', () => {
    const { snapshot } = apply(run(waitingForUser(), ev.ask('q2')), ev.answer('q1', 'casual'));
    expect(snapshot.value).toBe('waiting_for_user');
    expect(snapshot.context.pendingQuestions.map((question) => question.id)).toEqual(['q2']);
  });

  it('keeps the first answer: a second one is refused', () => {
    // The answered question has left the context; the runtime, reading supervisor_questions, names the first answer.
    const stillWaiting = run(waitingForUser(), ev.ask('q2'), ev.answer('q1', 'formal'));
    expect(stillWaiting.value).toBe('waiting_for_user');
    expectRefused(stillWaiting, ev.answer('q1', 'casual'), 'question q1 is not pending (never asked, or already answered)');
    expect(stillWaiting.context.answeredQuestionCount).toBe(1);
    const movedOn = run(waitingForUser(), ev.answer('q1', 'formal'));
    expect(movedOn.value).toBe('working');
    expectRefused(movedOn, ev.answer('q1', 'casual'), 'event ANSWER is not accepted in state working');
    const interrupted = run(waitingForUser(), ev.interrupt(), ev.answer('q1', 'formal'));
    expect(interrupted.value).toBe('interrupted');
    expectRefused(interrupted, ev.answer('q1', 'casual'), 'question q1 is not pending (never asked, or already answered)');
  });

  it('refuses an answer that is not one of the choices', () => {
    expectRefused(waitingForUser(), ev.answer('q1', 'funny'), 'answer "funny" is not one of the choices "formal", "casual"');
  });

  it('accepts any answer to a question without choices', () => {
    const open = run(started(), ev.ask('q1', 'Anything else?'));
    expect(apply(open, ev.answer('q1', 'no, thanks')).snapshot.value).toBe('working');
  });

  it('refuses a question that was never asked', () => {
    expectRefused(waitingForUser(), ev.answer('q9', 'formal'), 'question q9 is not pending (never asked, or already answered)');
  });

  it('records an answer while interrupted and stays interrupted', () => {
    const { snapshot, effects } = apply(run(waitingForUser(), ev.interrupt()), ev.answer('q1', 'casual'));
    expect(snapshot.value).toBe('interrupted');
    expect(snapshot.context.pendingQuestions).toEqual([]);
    expect(snapshot.context.answeredQuestionCount).toBe(1);
    expect(effects.map((effect) => effect.type)).toEqual(['appendConversation', 'answerReceived']);
  });

  it('is refused in states that are not waiting for the user', () => {
    expectRefused(started(), ev.answer('q1', 'x'), 'event ANSWER is not accepted in state idle');
  });
});

describe('SET_PHASE', () => {
  it('changes the phase, records the change, and keeps the state', () => {
    const { snapshot, effects } = apply(working(), ev.phase('drafting', 8));
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.phase).toBe('drafting');
    expect(conversationOf(effects)).toEqual([
      { seq: 1, role: 'system', content: 'Phase changed from planning to drafting.', at: at(8) },
    ]);
  });

  it.each(['idle', 'waiting_for_user', 'waiting_for_tasks'] as const)('is accepted in %s', (state) => {
    const snapshot = snapshotsByState()[state];
    expect(apply(snapshot, ev.phase('review')).snapshot.value).toBe(state);
  });

  it('refuses an empty phase and the current phase', () => {
    expectRefused(working(), ev.phase(''), 'phase must not be empty');
    expectRefused(working(), ev.phase('planning'), 'phase is already planning');
  });

  it('is refused before START', () => {
    expectRefused(initial(), ev.phase('drafting'), 'event SET_PHASE is not accepted in state initializing');
  });
});

describe('HEARTBEAT', () => {
  it.each(['initializing', 'idle', 'working', 'waiting_for_user', 'waiting_for_tasks', 'interrupted'] as const)(
    'records the time in %s without changing state or conversation',
    (state) => {
      const before = snapshotsByState()[state];
      const { snapshot, effects } = apply(before, ev.heartbeat(9));
      expect(snapshot.value).toBe(state);
      expect(snapshot.context).toEqual({ ...before.context, lastHeartbeatAt: at(9) });
      expect(effects).toEqual([]);
    },
  );

  it('updates activity and progress when given', () => {
    const { snapshot } = apply(working(), { type: 'HEARTBEAT', at: at(9), activity: 'drafting', progress: 55 });
    expect(snapshot.context).toMatchObject({ currentActivity: 'drafting', progress: 55, lastHeartbeatAt: at(9) });
  });

  it('refuses progress outside 0–100', () => {
    expectRefused(working(), { type: 'HEARTBEAT', at: at(9), progress: 101 }, 'progress 101 is outside 0–100');
  });
});

describe('COMPLETE', () => {
  it('completes an idle or working supervisor at 100 % and records it', () => {
    const { snapshot, effects } = apply(working(), ev.complete('Docs published.', 10));
    expect(snapshot.value).toBe('completed');
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.progress).toBe(100);
    expect(conversationOf(effects)).toEqual([
      { seq: 1, role: 'system', content: 'Supervisor "Docs writer" completed: Docs published.', at: at(10) },
    ]);
    expect(apply(started(), ev.complete()).snapshot.value).toBe('completed');
  });

  it('says only that the supervisor completed when no summary is given', () => {
    expect(conversationOf(apply(started(), ev.complete()).effects)[0]?.content).toBe('Supervisor "Docs writer" completed.');
  });

  it('is refused while tasks are running', () => {
    expectRefused(waitingForTasks(), ev.complete(), 'cannot complete while tasks are running (t1)');
    const busy = run(waitingForTasks(), ev.spawn('t2'), ev.activity('reviewing'));
    expectRefused(busy, ev.complete(), 'cannot complete while tasks are running (t1, t2)');
  });

  it('is accepted once every task has finished', () => {
    const done = run(waitingForTasks(), ev.taskCompleted('t1'));
    expect(apply(done, ev.complete()).snapshot.value).toBe('completed');
  });

  it('is refused while the supervisor waits for its user, before START, and while interrupted', () => {
    expectRefused(waitingForUser(), ev.complete(), 'event COMPLETE is not accepted in state waiting_for_user');
    expectRefused(initial(), ev.complete(), 'event COMPLETE is not accepted in state initializing');
    expectRefused(run(started(), ev.interrupt()), ev.complete(), 'event COMPLETE is not accepted in state interrupted');
  });
});

describe('FAIL', () => {
  it.each(['initializing', 'idle', 'working', 'waiting_for_user', 'waiting_for_tasks', 'interrupted'] as const)(
    'moves %s to failed with the error',
    (state) => {
      const { snapshot, effects } = apply(snapshotsByState()[state], ev.fail('model quota exhausted'));
      expect(snapshot.value).toBe('failed');
      expect(snapshot.status).toBe('done');
      expect(snapshot.context.errorMessage).toBe('model quota exhausted');
      expect(effects).toEqual([]);
    },
  );

  it('refuses an empty error', () => {
    expectRefused(working(), ev.fail(' '), 'error must not be empty');
  });
});

describe('INTERRUPT', () => {
  it.each(['initializing', 'idle', 'working', 'waiting_for_user', 'waiting_for_tasks'] as const)(
    'moves %s to interrupted and remembers where it came from',
    (state) => {
      const { snapshot, effects } = apply(snapshotsByState()[state], ev.interrupt('daemon shutting down'));
      expect(snapshot.value).toBe('interrupted');
      expect(snapshot.context.errorMessage).toBe('daemon shutting down');
      expect(snapshot.context.interruptedFrom).toBe(state);
      // Where the interruption began in the conversation: what is appended from here on arrived while interrupted.
      expect(snapshot.context.interruptedAtSeq).toBe(snapshotsByState()[state].context.conversationLength);
      expect(effects).toEqual([]);
    },
  );

  it('is refused while already interrupted', () => {
    expectRefused(run(started(), ev.interrupt()), ev.interrupt(), 'event INTERRUPT is not accepted in state interrupted');
  });
});

describe('held (made with start: false)', () => {
  const held = () => initial({ ...INPUT, held: true });

  it('is recorded in the initial context only when asked; a supervisor made to start has no such field', () => {
    expect(held().context.held).toBe(true);
    expect(initial().context).not.toHaveProperty('held');
  });

  it('START begins it: the hold is gone', () => {
    const { snapshot } = apply(held(), ev.start());
    expect(snapshot.value).toBe('idle');
    expect(snapshot.context.held).toBe(false);
  });

  it('an INTERRUPT keeps it; a RESUME back into initializing keeps it (it still waits for START)', () => {
    const interrupted = run(held(), ev.interrupt());
    expect(interrupted.context.held).toBe(true);
    const resumed = apply(interrupted, ev.resume()).snapshot;
    expect(resumed.value).toBe('initializing');
    expect(resumed.context.held).toBe(true);
  });

  it('a RESUME out of an interruption into a running state begins it', () => {
    // A held fork of a checkpoint interrupted while working.
    const interrupted = run(working(), ev.interrupt());
    const forked = supervisorMachine.resolveState({ value: 'interrupted', context: { ...interrupted.context, held: true } });
    const { snapshot } = apply(forked, ev.resume());
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.held).toBe(false);
  });
});

describe('RESUME', () => {
  it('returns to idle or initializing when nothing was in flight', () => {
    expect(apply(run(started(), ev.interrupt()), ev.resume()).snapshot.value).toBe('idle');
    expect(apply(run(initial(), ev.interrupt()), ev.resume()).snapshot.value).toBe('initializing');
  });

  it('clears the interruption', () => {
    const { snapshot, effects } = apply(run(working(), ev.interrupt()), ev.resume());
    expect(snapshot.value).toBe('working');
    expect(snapshot.context.errorMessage).toBeNull();
    expect(snapshot.context.interruptedFrom).toBeNull();
    expect(snapshot.context.interruptedAtSeq).toBeNull();
    expect(effects).toEqual([]);
  });

  it('returns to waiting_for_tasks when tasks are still running', () => {
    expect(apply(run(waitingForTasks(), ev.interrupt()), ev.resume()).snapshot.value).toBe('waiting_for_tasks');
  });

  it('goes on working when the awaited tasks finished during the interruption', () => {
    const snapshot = run(waitingForTasks(), ev.interrupt(), ev.taskCompleted('t1'));
    expect(apply(snapshot, ev.resume()).snapshot.value).toBe('working');
  });

  it('returns to waiting_for_user while questions are pending, and past it when they were answered meanwhile', () => {
    expect(apply(run(waitingForUser(), ev.interrupt()), ev.resume()).snapshot.value).toBe('waiting_for_user');
    const answered = run(waitingForUser(), ev.interrupt(), ev.answer('q1', 'formal'));
    expect(apply(answered, ev.resume()).snapshot.value).toBe('working');
  });

  it('waits for the user rather than the tasks when both are in flight', () => {
    const snapshot = run(waitingForTasks(), ev.interrupt());
    const withQuestion = run(waitingForTasks(), ev.ask('q1'), ev.interrupt());
    expect(apply(snapshot, ev.resume()).snapshot.value).toBe('waiting_for_tasks');
    expect(apply(withQuestion, ev.resume()).snapshot.value).toBe('waiting_for_user');
  });

  it('is refused when the supervisor is not interrupted', () => {
    expectRefused(working(), ev.resume(), 'event RESUME is not accepted in state working');
  });
});

describe('RESTORED', () => {
  it.each([...SUPERVISOR_STATES])('keeps %s and records the restoration', (state) => {
    const before = snapshotsByState()[state];
    const { snapshot, effects } = apply(before, ev.restored(false, 14));
    expect(snapshot.value).toBe(state);
    expect(snapshot.context).toMatchObject({
      restorationCount: 1,
      lastRestoredAt: at(14),
      restorationSource: 'daemon_restart',
      conversationLength: before.context.conversationLength + 1,
    });
    expect(effects).toEqual([
      {
        type: 'appendConversation',
        params: {
          entry: {
            seq: before.context.conversationLength,
            role: 'system',
            content: 'You were restored after a daemon restart.',
            at: at(14),
          },
        },
      },
    ]);
  });

  it('redelivers every pending question once when asked to', () => {
    const asking = run(waitingForUser(), ev.ask('q2', 'Deadline?'));
    const { snapshot, effects } = apply(asking, ev.restored(true, 14));
    expect(snapshot.context.pendingQuestions.map((q) => [q.id, q.deliveryCount, q.lastDeliveredAt])).toEqual([
      ['q1', 2, at(14)],
      ['q2', 2, at(14)],
    ]);
    expect(effects.map((effect) => effect.type)).toEqual(['appendConversation', 'deliverQuestion', 'deliverQuestion']);
    expect(effects.slice(1)).toEqual(
      snapshot.context.pendingQuestions.map((question) => ({
        type: 'deliverQuestion',
        params: { question, redelivery: true },
      })),
    );
  });

  it('leaves pending questions alone without redelivery', () => {
    const { snapshot, effects } = apply(waitingForUser(), ev.restored(false));
    expect(snapshot.context.pendingQuestions[0]?.deliveryCount).toBe(1);
    expect(effects.map((effect) => effect.type)).toEqual(['appendConversation']);
  });

  it('counts every restoration', () => {
    const snapshot = run(working(), ev.restored(false, 14), { ...ev.restored(false, 15), source: 'manual' } as SupervisorEvent);
    expect(snapshot.context).toMatchObject({ restorationCount: 2, lastRestoredAt: at(15), restorationSource: 'manual' });
  });
});

describe('final states', () => {
  const all: SupervisorEvent[] = [
    ev.start(),
    ev.activity('x'),
    ev.spawn('t1'),
    ev.taskCompleted('t1'),
    ev.ask('q1'),
    ev.answer('q1', 'yes'),
    ev.phase('review'),
    ev.heartbeat(),
    ev.complete(),
    ev.fail(),
    ev.interrupt(),
    ev.resume(),
  ];

  it.each(['completed', 'failed'] as const)('%s refuses every event but RESTORED', (state) => {
    const snapshot = snapshotsByState()[state];
    for (const event of all) expectRefused(snapshot, event, `supervisor is ${state} and accepts no more events`);
    expect(snapshot.can(ev.restored())).toBe(true);
    expect(explainRefusal(snapshot, ev.restored())).toBeNull();
  });

  it('a running actor stops at a final state, so RESTORED there goes through the pure transition()', () => {
    const actor = createActor(supervisorMachine, { input: INPUT }).start();
    actor.send(ev.start());
    actor.send(ev.complete());
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      actor.send(ev.restored());
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('has already reached its final state'));
    } finally {
      warn.mockRestore();
    }
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().context.restorationCount).toBe(0);
    const [restored] = transition(supervisorMachine, actor.getSnapshot(), ev.restored());
    expect(restored.value).toBe('completed');
    expect(restored.context.restorationCount).toBe(1);
  });
});

describe('conversation', () => {
  it('numbers entries from 0 without gaps and keeps conversationLength equal to the count', () => {
    const events: SupervisorEvent[] = [
      ev.start(),
      ev.heartbeat(),
      ev.spawn('t1'),
      ev.taskProgress('t1', 50),
      ev.ask('q1'),
      ev.answer('q1', 'yes'),
      ev.phase('drafting'),
      ev.restored(false),
      ev.taskCompleted('t1'),
      ev.complete(),
    ];
    let snapshot = initial();
    const entries = [];
    for (const event of events) {
      const step = apply(snapshot, event);
      snapshot = step.snapshot;
      entries.push(...conversationOf(step.effects));
    }
    expect(entries.map((entry) => entry.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(entries.map((entry) => entry.role)).toEqual(['system', 'assistant', 'assistant', 'user', 'system', 'system', 'tool', 'system']);
    expect(snapshot.context.conversationLength).toBe(8);
  });
});

describe('deriveWaitingState', () => {
  const task = (status: 'running' | 'completed' | 'failed') => ({
    id: `t-${status}`,
    description: '',
    status,
    progress: 0,
    result: null,
    error: null,
    spawnedAt: at(0),
    finishedAt: null,
  });
  const question = {
    id: 'q1',
    question: '?',
    choices: null,
    context: null,
    askedAt: at(0),
    deliveryCount: 1,
    lastDeliveredAt: at(0),
  };

  it('waits for the user whenever a question is pending, even with running tasks', () => {
    expect(deriveWaitingState({ pendingQuestions: [question], tasks: [task('running')] })).toBe('waiting_for_user');
  });

  it('waits for tasks when one is running and no question is pending', () => {
    expect(deriveWaitingState({ pendingQuestions: [], tasks: [task('completed'), task('running')] })).toBe(
      'waiting_for_tasks',
    );
  });

  it('works when nothing is in flight', () => {
    expect(deriveWaitingState({ pendingQuestions: [], tasks: [task('completed'), task('failed')] })).toBe('working');
    expect(deriveWaitingState({ pendingQuestions: [], tasks: [] })).toBe('working');
  });
});

describe('effectsOf', () => {
  it('keeps only effect actions, in order, as plain copies', () => {
    const params = { taskId: 't1', description: 'x' };
    const effects = effectsOf([
      { type: 'xstate.assign' },
      { type: 'startTask', params },
      { type: 'somethingElse', params: {} },
      { type: 'taskFinished', params: { taskId: 't1', status: 'completed' } },
    ]);
    expect(effects).toEqual([
      { type: 'startTask', params },
      { type: 'taskFinished', params: { taskId: 't1', status: 'completed' } },
    ]);
    expect(effects[0]?.params).not.toBe(params);
  });

  it('returns JSON-plain effects from a real transition', () => {
    const [, actions] = transition(supervisorMachine, waitingForUser(), ev.restored(true));
    const effects = effectsOf(actions);
    expect(effects).toHaveLength(2);
    expect(JSON.parse(JSON.stringify(effects))).toEqual(effects);
  });
});

describe('persistence', () => {
  function busySupervisor(): SupervisorSnapshot {
    return run(started(), ev.spawn('t1'), ev.spawn('t2'), ev.taskCompleted('t1'), ev.ask('q1', 'Tone?', ['a', 'b']), ev.restored(true));
  }

  it('round-trips the persisted snapshot through JSON and recreates the same actor', () => {
    const original = busySupervisor();
    const persisted = supervisorMachine.getPersistedSnapshot(original);
    const stored = JSON.parse(JSON.stringify(persisted)) as typeof persisted;
    expect(stored).toEqual(persisted);
    const actor = createActor(supervisorMachine, { snapshot: stored }).start();
    expect(actor.getSnapshot().value).toBe('waiting_for_user');
    expect(actor.getSnapshot().context).toEqual(original.context);
    expect(actor.getPersistedSnapshot()).toEqual(persisted);
  });

  it('behaves the same after a restore as before it', () => {
    const original = busySupervisor();
    const stored = JSON.parse(JSON.stringify(supervisorMachine.getPersistedSnapshot(original))) as ReturnType<
      typeof supervisorMachine.getPersistedSnapshot
    >;
    const restored = createActor(supervisorMachine, { snapshot: stored }).getSnapshot();
    const event = ev.answer('q1', 'a');
    const [fromOriginal, originalActions] = transition(supervisorMachine, original, event);
    const [fromRestored, restoredActions] = transition(supervisorMachine, restored, event);
    expect(fromRestored.value).toBe(fromOriginal.value);
    expect(fromRestored.context).toEqual(fromOriginal.context);
    expect(effectsOf(restoredActions)).toEqual(effectsOf(originalActions));
  });

  it('round-trips a final snapshot too', () => {
    const done = run(started(), ev.complete());
    const stored = JSON.parse(JSON.stringify(supervisorMachine.getPersistedSnapshot(done))) as ReturnType<
      typeof supervisorMachine.getPersistedSnapshot
    >;
    const actor = createActor(supervisorMachine, { snapshot: stored }).start();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().value).toBe('completed');
  });
});

describe('snapshot migration 1 → 2 (openWorkOnly)', () => {
  const runningTask = {
    id: 't2',
    description: 'write drafts',
    status: 'running',
    progress: 30,
    result: null,
    error: null,
    spawnedAt: at(3),
    finishedAt: null,
  };
  const pendingQuestion = {
    id: 'q3',
    question: 'Tone?',
    choices: ['a', 'b'],
    context: null,
    askedAt: at(6),
    deliveryCount: 1,
    lastDeliveredAt: at(6),
  };

  /** A persisted snapshot as machine version 1 wrote it: finished tasks and answered questions kept in the context. */
  function v1Snapshot(): Record<string, unknown> {
    const persisted = JSON.parse(JSON.stringify(supervisorMachine.getPersistedSnapshot(waitingForUser()))) as Record<string, unknown>;
    const context = { ...(persisted.context as Record<string, unknown>) };
    // Version 1 had no counters.
    delete context.answeredQuestionCount;
    delete context.completedTaskCount;
    delete context.failedTaskCount;
    return JSON.parse(
      JSON.stringify({
        ...persisted,
        context: {
          ...context,
          tasks: [
            { ...runningTask, id: 't1', status: 'completed', progress: 100, result: 'ok', finishedAt: at(4) },
            runningTask,
            { ...runningTask, id: 't3', status: 'failed', error: 'boom', finishedAt: at(5) },
            { ...runningTask, id: 't4', status: 'completed', progress: 100, result: 'ok too', finishedAt: at(5) },
          ],
          pendingQuestions: [pendingQuestion],
          answeredQuestions: [
            { id: 'q1', question: 'Which tone?', answer: 'formal', answeredAt: at(7) },
            { id: 'q2', question: 'Publish?', answer: 'yes', answeredAt: at(8) },
          ],
        },
      }),
    ) as Record<string, unknown>;
  }

  it('is the registered migration from version 1', () => {
    expect(SNAPSHOT_MIGRATIONS.get(1)).toBe(openWorkOnly);
  });

  it('keeps only open work and turns what finished into counters', () => {
    const before = v1Snapshot();
    const after = openWorkOnly(before);
    const context = after.context as Record<string, unknown>;
    expect(context).not.toHaveProperty('answeredQuestions');
    expect(context.tasks).toEqual([runningTask]);
    expect(context.pendingQuestions).toEqual([pendingQuestion]);
    expect(context.answeredQuestionCount).toBe(2);
    expect(context.completedTaskCount).toBe(2);
    expect(context.failedTaskCount).toBe(1);
    // Everything else is carried over untouched, and the input is not mutated.
    const untouched = { ...(before.context as Record<string, unknown>) };
    delete untouched.tasks;
    delete untouched.answeredQuestions;
    expect(context).toEqual({ ...untouched, tasks: [runningTask], answeredQuestionCount: 2, completedTaskCount: 2, failedTaskCount: 1 });
    expect(after.value).toBe(before.value);
    expect((before.context as Record<string, unknown>).answeredQuestions).toHaveLength(2);
    expect((before.context as Record<string, unknown>).tasks).toHaveLength(4);
  });

  it('counts zero when a v1 context has no answeredQuestions list', () => {
    const before = v1Snapshot();
    delete (before.context as Record<string, unknown>).answeredQuestions;
    expect((openWorkOnly(before).context as Record<string, unknown>).answeredQuestionCount).toBe(0);
  });

  it('leaves a snapshot that is not the expected shape for the validation guards to report', () => {
    const broken = { value: 'working', context: { tasks: 'not a list' } };
    expect(openWorkOnly(broken)).toBe(broken);
  });

  it('turns a v1 snapshot into one the version 2 machine restores and drives', () => {
    const migrated = migrateSnapshot(v1Snapshot(), 1);
    expect(migrated.ok).toBe(true);
    if (!migrated.ok) return;
    expect(migrated.migratedFrom).toBe(1);
    const restored = createActor(supervisorMachine, {
      snapshot: migrated.snapshot as unknown as ReturnType<typeof supervisorMachine.getPersistedSnapshot>,
    }).getSnapshot();
    expect(restored.value).toBe('waiting_for_user');
    expect(restored.context.tasks.map((task) => task.id)).toEqual(['t2']);
    const { snapshot } = apply(restored, ev.answer('q3', 'a', 9));
    expect(snapshot.value).toBe('waiting_for_tasks');
    expect(snapshot.context.answeredQuestionCount).toBe(3);
    expect(apply(snapshot, ev.taskCompleted('t2', 'drafts', 10)).snapshot.context).toMatchObject({
      tasks: [],
      completedTaskCount: 3,
      failedTaskCount: 1,
    });
  });

  it('does nothing to a snapshot that is already version 2', () => {
    const current = JSON.parse(JSON.stringify(supervisorMachine.getPersistedSnapshot(waitingForUser()))) as Record<string, unknown>;
    expect(migrateSnapshot(current, 2)).toEqual({ ok: true, snapshot: current, migratedFrom: null });
  });
});

describe('a supervisor driven as an actor', () => {
  it('plans, delegates, asks, and completes', () => {
    const actor = createActor(supervisorMachine, { input: INPUT }).start();
    const states: string[] = [];
    actor.subscribe((snapshot) => states.push(snapshot.value));
    actor.send(ev.start());
    actor.send(ev.activity('planning the docs', 5));
    actor.send(ev.spawn('t1', 'collect API reference'));
    actor.send(ev.taskProgress('t1', 60));
    actor.send(ev.ask('q1', 'Publish to the wiki?', ['yes', 'no']));
    actor.send(ev.answer('q1', 'yes'));
    actor.send(ev.taskCompleted('t1', 'reference collected'));
    actor.send(ev.complete('Docs published.'));
    expect(actor.getSnapshot().value).toBe('completed');
    expect(actor.getSnapshot().context).toMatchObject({ progress: 100, conversationLength: 6 });
    expect(states).toEqual([
      'idle',
      'working',
      'waiting_for_tasks',
      'waiting_for_tasks',
      'waiting_for_user',
      'waiting_for_tasks',
      'working',
      'completed',
    ]);
  });

  it('ignores a refused event without changing its snapshot', () => {
    const actor = createActor(supervisorMachine, { input: INPUT }).start();
    actor.send(ev.start());
    const before = actor.getSnapshot();
    actor.send(ev.answer('q1', 'yes'));
    expect(actor.getSnapshot()).toBe(before);
  });
});
