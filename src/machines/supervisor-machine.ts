// The supervisor's lifecycle as a pure XState machine: the runtime computes a transition, commits it, then runs its effects.

import { and, createActor, enqueueActions, setup, type ActorScope, type ExecutableActionObject, type SnapshotFrom } from 'xstate';
import { isTerminalState, type SupervisorState } from '../domain/supervisor-state.js';
import {
  checkAnswer,
  checkAskQuestion,
  checkComplete,
  checkEvent,
  checkFail,
  checkReceiveMessage,
  checkSendMessage,
  checkHeartbeat,
  checkSetActivity,
  checkSetPhase,
  checkSpawnTask,
  checkTaskEvent,
  checkWithdrawQuestion,
} from './supervisor-guards.js';
import {
  SUPERVISOR_EFFECT_TYPES,
  type SupervisorContext,
  type SupervisorEffect,
  type SupervisorEvent,
  type SupervisorInput,
  type WaitingState,
} from './supervisor-types.js';
import {
  applyAnswer,
  applyAskQuestion,
  applyComplete,
  applyFail,
  applyHeartbeat,
  applyInterrupt,
  applyRestored,
  applyReceiveMessage,
  applySendMessage,
  applyResume,
  applySetActivity,
  applySetPhase,
  applySpawnTask,
  applyStart,
  applyTaskEvent,
  applyWithdrawQuestion,
  initialSupervisorContext,
  settledStateAfter,
  type SupervisorUpdate,
} from './supervisor-updates.js';

export { deriveWaitingState } from './supervisor-updates.js';

/** Bump when a persisted snapshot of the previous version could no longer be restored as is. */
export const SUPERVISOR_MACHINE_VERSION = 2;

type EffectParams<T extends SupervisorEffect['type']> = Extract<SupervisorEffect, { type: T }>['params'];

// The effects are no-ops here on purpose: running them is the runtime's job, after the commit.
const withEffects = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    // Optional only so `createActor(supervisorMachine, { snapshot })` type-checks (a restored actor never reads input);
    // `void`, because setup() drops `undefined` from the union when it infers the input type.
    input: {} as SupervisorInput | void,
  },
  actions: {
    startTask: (_, _params: EffectParams<'startTask'>) => {},
    deliverQuestion: (_, _params: EffectParams<'deliverQuestion'>) => {},
    answerReceived: (_, _params: EffectParams<'answerReceived'>) => {},
    questionWithdrawn: (_, _params: EffectParams<'questionWithdrawn'>) => {},
    taskProgressed: (_, _params: EffectParams<'taskProgressed'>) => {},
    taskFinished: (_, _params: EffectParams<'taskFinished'>) => {},
    appendConversation: (_, _params: EffectParams<'appendConversation'>) => {},
    sendMessage: (_, _params: EffectParams<'sendMessage'>) => {},
    messageReceived: (_, _params: EffectParams<'messageReceived'>) => {},
  },
});

/** One action per kind of change: the new context and the effects it implies land in the same transition. */
function recording<E extends SupervisorEvent['type'], P extends Record<string, unknown> | undefined = undefined>(
  type: E,
  update: (context: SupervisorContext, event: Extract<SupervisorEvent, { type: E }>, params: P) => SupervisorUpdate,
) {
  return enqueueActions<SupervisorContext, SupervisorEvent, P, SupervisorEvent, never, SupervisorEffect, never>(
    ({ context, event, enqueue }, params) => {
      // The config only routes events of this type here; the check keeps a misrouted event from corrupting context.
      if (event.type !== type) return;
      const next = update(context, event as Extract<SupervisorEvent, { type: E }>, params);
      enqueue.assign(() => next.context);
      for (const effect of next.effects) enqueue(effect);
    },
  );
}

const supervisorSetup = withEffects.extend({
  actions: {
    recordStart: recording('START', applyStart),
    recordActivity: recording('SET_ACTIVITY', applySetActivity),
    recordSpawnedTask: recording('SPAWN_TASK', applySpawnTask),
    recordTaskEvent: recording('TASK_EVENT', applyTaskEvent),
    recordQuestion: recording('ASK_QUESTION', applyAskQuestion),
    recordAnswer: recording('ANSWER', applyAnswer),
    recordWithdrawal: recording('WITHDRAW_QUESTION', applyWithdrawQuestion),
    recordPhase: recording('SET_PHASE', applySetPhase),
    recordHeartbeat: recording('HEARTBEAT', applyHeartbeat),
    recordCompletion: recording('COMPLETE', applyComplete),
    recordFailure: recording('FAIL', applyFail),
    recordInterruption: recording('INTERRUPT', (context, event, params: { from: SupervisorState }) =>
      applyInterrupt(context, event, params.from),
    ),
    recordResume: recording('RESUME', applyResume),
    recordRestoration: recording('RESTORED', applyRestored),
    recordSentMessage: recording('SEND_MESSAGE', applySendMessage),
    recordReceivedMessage: recording('RECEIVE_MESSAGE', applyReceiveMessage),
  },
  guards: {
    canSetActivity: ({ context, event }) => event.type === 'SET_ACTIVITY' && checkSetActivity(context, event) === null,
    canSpawnTask: ({ context, event }) => event.type === 'SPAWN_TASK' && checkSpawnTask(context, event) === null,
    canApplyTaskEvent: ({ context, event }) => event.type === 'TASK_EVENT' && checkTaskEvent(context, event) === null,
    canAskQuestion: ({ context, event }) => event.type === 'ASK_QUESTION' && checkAskQuestion(context, event) === null,
    canAnswer: ({ context, event }) => event.type === 'ANSWER' && checkAnswer(context, event) === null,
    canWithdrawQuestion: ({ context, event }) => event.type === 'WITHDRAW_QUESTION' && checkWithdrawQuestion(context, event) === null,
    canSetPhase: ({ context, event }) => event.type === 'SET_PHASE' && checkSetPhase(context, event) === null,
    canHeartbeat: ({ context, event }) => event.type === 'HEARTBEAT' && checkHeartbeat(context, event) === null,
    canComplete: ({ context, event }) => event.type === 'COMPLETE' && checkComplete(context, event) === null,
    canFail: ({ context, event }) => event.type === 'FAIL' && checkFail(context, event) === null,
    canSendMessage: ({ context, event }) => event.type === 'SEND_MESSAGE' && checkSendMessage(context, event) === null,
    canReceiveMessage: ({ context, event }) => event.type === 'RECEIVE_MESSAGE' && checkReceiveMessage(context, event) === null,
    isTaskProgress: ({ event }) => event.type === 'TASK_EVENT' && event.kind === 'progress',
    settlesIn: ({ context, event }, params: { state: SupervisorState }) =>
      settledStateAfter(context, event) === params.state,
  },
});

const WAITING_STATES = ['waiting_for_user', 'waiting_for_tasks', 'working'] as const satisfies readonly WaitingState[];

type SettlingGuard = 'canSpawnTask' | 'canApplyTaskEvent' | 'canAnswer' | 'canWithdrawQuestion';

/**
 * Transitions whose target is computed: one guarded candidate per state the event can settle in.
 * Callers narrow the candidates to what the event's own change allows, so the generated diagram draws no impossible edge.
 */
function settling(
  guard: SettlingGuard,
  actions: 'recordSpawnedTask' | 'recordTaskEvent' | 'recordAnswer' | 'recordWithdrawal',
  targets: readonly WaitingState[] = WAITING_STATES,
) {
  return targets.map((state) => ({
    guard: and<SupervisorContext, SupervisorEvent, [SettlingGuard, { type: 'settlesIn'; params: { state: WaitingState } }]>([
      guard,
      { type: 'settlesIn', params: { state } },
    ]),
    target: state,
    actions,
  }));
}

// A spawned task is running by definition, so spawning never settles in `working`.
const spawning = () => settling('canSpawnTask', 'recordSpawnedTask', ['waiting_for_user', 'waiting_for_tasks']);

const RESUME_TARGETS = ['initializing', 'idle', ...WAITING_STATES] as const satisfies readonly SupervisorState[];

const interruptFrom = (from: SupervisorState) =>
  ({ target: 'interrupted', actions: { type: 'recordInterruption', params: { from } } }) as const;

/** A new supervisor actor was started without its input. */
export class SupervisorInputMissingError extends Error {
  override readonly name = 'SupervisorInputMissingError';
  constructor() {
    super('supervisorMachine needs input { supervisorId, name, createdAt } to start a new supervisor; pass { snapshot } to restore one.');
  }
}

/**
 * Thrown as this one instance: XState's pure transition() and initialTransition() build a throwaway actor of the
 * machine without input on every call, so the factory below runs (and throws) each time, and a new Error there
 * captured a stack each time (about 60 of a transition's 76 µs). transitionSupervisor avoids the throwaway actor
 * altogether; spawns still go through initialTransition().
 */
const INPUT_MISSING = new SupervisorInputMissingError();

export const supervisorMachine = supervisorSetup.createMachine({
  id: 'supervisor',
  context: ({ input }) => {
    if (!input) throw INPUT_MISSING;
    return initialSupervisorContext(input);
  },
  initial: 'initializing',
  states: {
    initializing: {
      on: {
        START: { target: 'idle', actions: 'recordStart' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        INTERRUPT: interruptFrom('initializing'),
        // A message that arrives before START or during an interruption is kept, like an answer.
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
    idle: {
      on: {
        SET_ACTIVITY: { guard: 'canSetActivity', target: 'working', actions: 'recordActivity' },
        SPAWN_TASK: spawning(),
        TASK_EVENT: { guard: 'canApplyTaskEvent', actions: 'recordTaskEvent' },
        ASK_QUESTION: { guard: 'canAskQuestion', target: 'waiting_for_user', actions: 'recordQuestion' },
        SET_PHASE: { guard: 'canSetPhase', actions: 'recordPhase' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        COMPLETE: { guard: 'canComplete', target: 'completed', actions: 'recordCompletion' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        INTERRUPT: interruptFrom('idle'),
        SEND_MESSAGE: { guard: 'canSendMessage', actions: 'recordSentMessage' },
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
    working: {
      on: {
        SET_ACTIVITY: { guard: 'canSetActivity', actions: 'recordActivity' },
        SPAWN_TASK: spawning(),
        TASK_EVENT: { guard: 'canApplyTaskEvent', actions: 'recordTaskEvent' },
        ASK_QUESTION: { guard: 'canAskQuestion', target: 'waiting_for_user', actions: 'recordQuestion' },
        SET_PHASE: { guard: 'canSetPhase', actions: 'recordPhase' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        COMPLETE: { guard: 'canComplete', target: 'completed', actions: 'recordCompletion' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        INTERRUPT: interruptFrom('working'),
        SEND_MESSAGE: { guard: 'canSendMessage', actions: 'recordSentMessage' },
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
    waiting_for_user: {
      on: {
        // Questions block: the activity is recorded but the supervisor keeps waiting for its human.
        SET_ACTIVITY: { guard: 'canSetActivity', actions: 'recordActivity' },
        SPAWN_TASK: spawning(),
        TASK_EVENT: { guard: 'canApplyTaskEvent', actions: 'recordTaskEvent' },
        ASK_QUESTION: { guard: 'canAskQuestion', target: 'waiting_for_user', actions: 'recordQuestion' },
        ANSWER: settling('canAnswer', 'recordAnswer'),
        WITHDRAW_QUESTION: settling('canWithdrawQuestion', 'recordWithdrawal'),
        SET_PHASE: { guard: 'canSetPhase', actions: 'recordPhase' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        INTERRUPT: interruptFrom('waiting_for_user'),
        SEND_MESSAGE: { guard: 'canSendMessage', actions: 'recordSentMessage' },
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
    waiting_for_tasks: {
      on: {
        // The supervisor may work on its own while its tasks run.
        SET_ACTIVITY: { guard: 'canSetActivity', target: 'working', actions: 'recordActivity' },
        SPAWN_TASK: spawning(),
        TASK_EVENT: [
          { guard: and(['canApplyTaskEvent', 'isTaskProgress']), actions: 'recordTaskEvent' },
          ...settling('canApplyTaskEvent', 'recordTaskEvent'),
        ],
        ASK_QUESTION: { guard: 'canAskQuestion', target: 'waiting_for_user', actions: 'recordQuestion' },
        SET_PHASE: { guard: 'canSetPhase', actions: 'recordPhase' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        COMPLETE: { guard: 'canComplete', target: 'completed', actions: 'recordCompletion' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        INTERRUPT: interruptFrom('waiting_for_tasks'),
        SEND_MESSAGE: { guard: 'canSendMessage', actions: 'recordSentMessage' },
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
    // Final states still take RESTORED so restoration bookkeeping stays uniform; see explainRefusal.
    completed: {
      type: 'final',
      on: { RESTORED: { actions: 'recordRestoration' } },
    },
    failed: {
      type: 'final',
      on: { RESTORED: { actions: 'recordRestoration' } },
    },
    interrupted: {
      on: {
        // Outcomes and answers that arrive during an interruption are kept, so nothing is lost on resume.
        TASK_EVENT: { guard: 'canApplyTaskEvent', actions: 'recordTaskEvent' },
        ANSWER: { guard: 'canAnswer', actions: 'recordAnswer' },
        WITHDRAW_QUESTION: { guard: 'canWithdrawQuestion', actions: 'recordWithdrawal' },
        HEARTBEAT: { guard: 'canHeartbeat', actions: 'recordHeartbeat' },
        FAIL: { guard: 'canFail', target: 'failed', actions: 'recordFailure' },
        RESUME: RESUME_TARGETS.map((state) => ({
          guard: { type: 'settlesIn', params: { state } } as const,
          target: state,
          actions: 'recordResume' as const,
        })),
        // A message that arrives before START or during an interruption is kept, like an answer.
        RECEIVE_MESSAGE: { guard: 'canReceiveMessage', actions: 'recordReceivedMessage' },
        RESTORED: { actions: 'recordRestoration' },
      },
    },
  },
});

export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;

type SupervisorScope = ActorScope<SupervisorSnapshot, SupervisorEvent>;

let inertScope: SupervisorScope | undefined;
let collecting: ExecutableActionObject[] | null = null;

/**
 * What XState's pure `transition(supervisorMachine, snapshot, event)` returns (the next snapshot and the actions to
 * execute, none executed), through one inert actor scope for the process. XState's own builds a new one per call (an
 * actor with its initial state, and two actor systems): most of the cost of a save point's transition. The scope is
 * the same as XState's inert one: it collects actions instead of running them and does nothing else; the machine
 * spawns no children and emits nothing, so nothing is kept in it from one call to the next.
 */
export function transitionSupervisor(snapshot: SupervisorSnapshot, event: SupervisorEvent): [SupervisorSnapshot, ExecutableActionObject[]] {
  inertScope ??= (() => {
    const self = createActor(supervisorMachine, { input: { supervisorId: '00000000-0000-4000-8000-000000000000', name: 'inert', createdAt: new Date(0).toISOString() } });
    return {
      self,
      id: '',
      sessionId: '',
      logger: () => {},
      defer: () => {},
      emit: () => {},
      system: self.system,
      stopChild: () => {},
      actionExecutor: (action) => void collecting?.push(action),
    } satisfies SupervisorScope;
  })();
  const actions: ExecutableActionObject[] = [];
  const outer = collecting;
  collecting = actions;
  try {
    return [supervisorMachine.transition(snapshot, event, inertScope), actions];
  } finally {
    collecting = outer;
  }
}

/**
 * Why the machine would refuse `event` in `snapshot`, or null when it would accept it.
 * Agrees with `snapshot.can(event)`: both read the same config and the same checks.
 */
export function explainRefusal(snapshot: SupervisorSnapshot, event: SupervisorEvent): string | null {
  const state = snapshot.value;
  const transitions = supervisorMachine.root.states[state]?.on[event.type];
  if (transitions === undefined || transitions.length === 0) {
    if (isTerminalState(state)) return `supervisor is ${state} and accepts no more events`;
    return `event ${event.type} is not accepted in state ${state}`;
  }
  return checkEvent(snapshot.context, event);
}

const EFFECT_TYPES: ReadonlySet<string> = new Set(SUPERVISOR_EFFECT_TYPES);

/**
 * The effects among the actions `transition()` returned, in order, as plain data the runtime can store and run: each
 * with a copy of its params. Values inside them (a question, a task, a conversation entry) are the plain objects the
 * machine's updates built for this transition, shared with the new context as the context shares them between
 * snapshots: neither ever changes afterwards. A deep copy of each effect (structuredClone) cost a restoration 4 % of
 * its CPU.
 */
export function effectsOf(actions: readonly { type: string; params?: unknown }[]): SupervisorEffect[] {
  const effects: SupervisorEffect[] = [];
  for (const action of actions) {
    if (!EFFECT_TYPES.has(action.type)) continue;
    const params = typeof action.params === 'object' && action.params !== null ? { ...action.params } : action.params;
    effects.push({ type: action.type, params } as SupervisorEffect);
  }
  return effects;
}
