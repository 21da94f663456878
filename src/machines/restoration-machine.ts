// The restoration protocol as an XState machine, so the inspector shows every restore step by step. Each step is an
// invoked actor the runtime provides (machines know no database); the context only gathers what the steps report.

import { assign, fromPromise, setup } from 'xstate';
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

const unprovided = (step: string) =>
  fromPromise<RestorationStepOutput, RestorationStepInput>(async () => {
    throw new Error(`restoration step ${step} is not provided: the runtime supplies it with restorationMachine.provide({ actors })`);
  });

export const restorationMachine = setup({
  types: {
    context: {} as RestorationMachineContext,
    input: {} as RestorationInput,
    output: {} as { result: RestorationInfo | null; error: string | null },
  },
  actors: {
    loadState: unprovided('loadState'),
    validateState: unprovided('validateState'),
    findValidCheckpoint: unprovided('findValidCheckpoint'),
    startFresh: unprovided('startFresh'),
    restoreConversation: unprovided('restoreConversation'),
    redeliverQuestions: unprovided('redeliverQuestions'),
    reconcileTasks: unprovided('reconcileTasks'),
    buildContextMessage: unprovided('buildContextMessage'),
    markRestored: unprovided('markRestored'),
    resumeSupervisor: unprovided('resumeSupervisor'),
  },
  actions: {
    merge: assign(({ context, event }) => {
      const output = ((event as { output?: RestorationStepOutput }).output ?? {}) as RestorationStepOutput;
      return { ...output, warnings: [...context.warnings, ...(output.warnings ?? [])] };
    }),
    fail: assign(({ event }) => {
      const error = (event as { error?: unknown }).error;
      return { error: error instanceof Error ? error.message : String(error) };
    }),
    noteNotFound: assign({ recoveryAction: 'start_fresh' as const, warnings: ({ context }) => [...context.warnings, 'no stored state: starting fresh'] }),
    useCheckpoint: assign({ recoveryAction: 'restore_from_checkpoint' as const }),
    useFreshStart: assign({ recoveryAction: 'start_fresh' as const }),
  },
  guards: {
    notFound: ({ event }) => (event as { output?: RestorationStepOutput }).output?.found === false,
    isValid: ({ event }) => (event as { output?: RestorationStepOutput }).output?.validation?.valid === true,
    checkpointFound: ({ event }) => typeof (event as { output?: RestorationStepOutput }).output?.checkpointSeq === 'number',
  },
}).createMachine({
  id: 'restoration',
  context: ({ input }) => ({
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
  }),
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
  output: ({ context }) => ({ result: context.result, error: context.error }),
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
