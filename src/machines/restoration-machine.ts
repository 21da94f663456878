// The restoration protocol as an XState machine, so the inspector shows every restore step by step. Each step is an
// invoked actor the runtime provides (machines know no database); the context only gathers what the steps report.

import { assign, fromPromise, setup, type AnyEventObject } from 'xstate';
import type { RestorationInfo, RestorationSource, StateRecoveryAction, StateValidationResult } from '../domain/restoration.js';

export interface RestorationInput {
  supervisorId: string;
  source: RestorationSource;
}

export interface RestorationMachineContext {
  supervisorId: string;
  source: RestorationSource;
  found: boolean;
  validation: StateValidationResult | null;
  recoveryAction: StateRecoveryAction;
  checkpointSeq: number | null;
  warnings: string[];
  contextMessage: string | null;
  result: RestorationInfo | null;
  error: string | null;
}

/** What a step reports back; merged into the context. */
export type RestorationStepOutput = Partial<Omit<RestorationMachineContext, 'supervisorId' | 'source' | 'warnings'>> & { warnings?: string[] };

export type RestorationStepInput = { context: RestorationMachineContext };

/** The protocol's steps: each is an actor the machine invokes (the runtime provides them). */
export const RESTORATION_STEP_NAMES = [
  'loadState',
  'validateState',
  'findValidCheckpoint',
  'startFresh',
  'restoreConversation',
  'redeliverQuestions',
  'reconcileTasks',
  'buildContextMessage',
  'markRestored',
  'resumeSupervisor',
] as const;
export type RestorationStepName = (typeof RESTORATION_STEP_NAMES)[number];

/** How a step ended, as the machine sees it: done with an output, or failed with an error. */
export interface RestorationStepEvent {
  output?: RestorationStepOutput;
  error?: unknown;
}

/**
 * The machine's context updates and guards as plain functions: its assign actions and guards are these, and
 * runRestorationSteps (restoration-runner.ts) applies the same ones when no inspector watches.
 */
export const restorationUpdates = {
  merge: (context: RestorationMachineContext, event: RestorationStepEvent): Partial<RestorationMachineContext> => {
    const output = event.output ?? {};
    return { ...output, warnings: [...context.warnings, ...(output.warnings ?? [])] };
  },
  fail: (_context: RestorationMachineContext, event: RestorationStepEvent): Partial<RestorationMachineContext> => ({
    error: event.error instanceof Error ? event.error.message : String(event.error),
  }),
  noteNotFound: (context: RestorationMachineContext): Partial<RestorationMachineContext> => ({
    recoveryAction: 'start_fresh',
    warnings: [...context.warnings, 'no stored state: starting fresh'],
  }),
  useCheckpoint: (): Partial<RestorationMachineContext> => ({ recoveryAction: 'restore_from_checkpoint' }),
  useFreshStart: (): Partial<RestorationMachineContext> => ({ recoveryAction: 'start_fresh' }),
} as const;

export const restorationGuards = {
  notFound: (event: RestorationStepEvent) => event.output?.found === false,
  isValid: (event: RestorationStepEvent) => event.output?.validation?.valid === true,
  checkpointFound: (event: RestorationStepEvent) => typeof event.output?.checkpointSeq === 'number',
} as const;

export function initialRestorationContext(input: RestorationInput): RestorationMachineContext {
  return {
    supervisorId: input.supervisorId,
    source: input.source,
    found: false,
    validation: null,
    recoveryAction: 'restore',
    checkpointSeq: null,
    warnings: [],
    contextMessage: null,
    result: null,
    error: null,
  };
}

export function restorationOutput(context: RestorationMachineContext): RestorationOutput {
  return { result: context.result, error: context.error };
}

export type RestorationOutput = { result: RestorationInfo | null; error: string | null };

const unprovided = (step: string) =>
  fromPromise<RestorationStepOutput, RestorationStepInput>(async () => {
    throw new Error(`restoration step ${step} is not provided: the runtime supplies it with restorationMachine.provide({ actors })`);
  });

const update = (name: keyof typeof restorationUpdates) =>
  assign<RestorationMachineContext, AnyEventObject, undefined, AnyEventObject, never>(({ context, event }) => restorationUpdates[name](context, event as RestorationStepEvent));

export const restorationMachine = setup({
  types: {
    context: {} as RestorationMachineContext,
    input: {} as RestorationInput,
    output: {} as RestorationOutput,
  },
  actors: Object.fromEntries(RESTORATION_STEP_NAMES.map((name) => [name, unprovided(name)])) as Record<RestorationStepName, ReturnType<typeof unprovided>>,
  actions: {
    merge: update('merge'),
    fail: update('fail'),
    noteNotFound: update('noteNotFound'),
    useCheckpoint: update('useCheckpoint'),
    useFreshStart: update('useFreshStart'),
  },
  guards: {
    notFound: ({ event }) => restorationGuards.notFound(event as RestorationStepEvent),
    isValid: ({ event }) => restorationGuards.isValid(event as RestorationStepEvent),
    checkpointFound: ({ event }) => restorationGuards.checkpointFound(event as RestorationStepEvent),
  },
}).createMachine({
  id: 'restoration',
  context: ({ input }) => initialRestorationContext(input),
  initial: 'loading',
  states: {
    // 1. load the row
    loading: {
      invoke: {
        src: 'loadState',
        input: ({ context }) => ({ context }),
        onDone: [
          // 2. not found: start fresh with a warning
          { guard: 'notFound', target: 'startingFresh', actions: ['merge', 'noteNotFound'] },
          { target: 'validating', actions: 'merge' },
        ],
        onError: { target: 'failed', actions: 'fail' },
      },
    },
    // 3. validate with the named guards
    validating: {
      invoke: {
        src: 'validateState',
        input: ({ context }) => ({ context }),
        onDone: [
          { guard: 'isValid', target: 'restoringConversation', actions: 'merge' },
          { target: 'walkingCheckpoints', actions: 'merge' },
        ],
        onError: { target: 'failed', actions: 'fail' },
      },
    },
    // 4. invalid: the newest checkpoint that passes the same guards, else start fresh (bad rows kept for inspection)
    walkingCheckpoints: {
      invoke: {
        src: 'findValidCheckpoint',
        input: ({ context }) => ({ context }),
        onDone: [
          { guard: 'checkpointFound', target: 'restoringConversation', actions: ['merge', 'useCheckpoint'] },
          { target: 'startingFresh', actions: ['merge', 'useFreshStart'] },
        ],
        onError: { target: 'failed', actions: 'fail' },
      },
    },
    startingFresh: {
      invoke: { src: 'startFresh', input: ({ context }) => ({ context }), onDone: { target: 'buildingContext', actions: 'merge' }, onError: { target: 'failed', actions: 'fail' } },
    },
    // 5. restore the conversation history
    restoringConversation: {
      invoke: {
        src: 'restoreConversation',
        input: ({ context }) => ({ context }),
        onDone: { target: 'redeliveringQuestions', actions: 'merge' },
        onError: { target: 'failed', actions: 'fail' },
      },
    },
    // 6. re-deliver every pending question (committed with step 9's save point, through the outbox)
    redeliveringQuestions: {
      invoke: {
        src: 'redeliverQuestions',
        input: ({ context }) => ({ context }),
        onDone: { target: 'reconcilingTasks', actions: 'merge' },
        onError: { target: 'failed', actions: 'fail' },
      },
    },
    // 7. running tasks: wait on them; finished while down: apply now; missing: drop with a warning
    reconcilingTasks: {
      invoke: { src: 'reconcileTasks', input: ({ context }) => ({ context }), onDone: { target: 'buildingContext', actions: 'merge' }, onError: { target: 'failed', actions: 'fail' } },
    },
    // 8. the restoration context message for the LLM
    buildingContext: {
      invoke: { src: 'buildContextMessage', input: ({ context }) => ({ context }), onDone: { target: 'markingRestored', actions: 'merge' }, onError: { target: 'failed', actions: 'fail' } },
    },
    // 9. count, time and source, in one save point with the re-delivery and the context message
    markingRestored: {
      invoke: { src: 'markRestored', input: ({ context }) => ({ context }), onDone: { target: 'resuming', actions: 'merge' }, onError: { target: 'failed', actions: 'fail' } },
    },
    // 10. resume the supervisor actor, timers re-armed from stored deadlines
    resuming: {
      invoke: { src: 'resumeSupervisor', input: ({ context }) => ({ context }), onDone: { target: 'restored', actions: 'merge' }, onError: { target: 'failed', actions: 'fail' } },
    },
    restored: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => restorationOutput(context),
});

export const RESTORATION_STEPS = [
  'loading',
  'validating',
  'walkingCheckpoints',
  'startingFresh',
  'restoringConversation',
  'redeliveringQuestions',
  'reconcilingTasks',
  'buildingContext',
  'markingRestored',
  'resuming',
  'restored',
  'failed',
] as const;
