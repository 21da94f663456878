// runRestorationSteps follows the restoration machine itself: for every path through the protocol it calls the same
// steps in the same order, hands each the same context, and ends with the same output as the machine run as an actor.

import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import type { RestorationInfo } from '../../src/domain/restoration.js';
import {
  RESTORATION_STEP_NAMES,
  restorationMachine,
  type RestorationMachineContext,
  type RestorationOutput,
  type RestorationStepInput,
  type RestorationStepName,
  type RestorationStepOutput,
} from '../../src/machines/restoration-machine.js';
import { runRestorationSteps } from '../../src/machines/restoration-runner.js';

type Script = Partial<Record<RestorationStepName, () => RestorationStepOutput>>;

interface Run {
  calls: Array<{ step: RestorationStepName; context: RestorationMachineContext }>;
  output: RestorationOutput;
}

const INPUT = { supervisorId: '00000000-0000-4000-8000-000000000001', source: 'daemon_restart' as const };
const RESULT = { supervisorId: INPUT.supervisorId } as RestorationInfo;
const valid = { valid: true, errors: [], warnings: ['a task vanished'], recoveryAction: 'restore' as const };
const invalid = { valid: false, errors: ['progress out of range'], warnings: [], recoveryAction: 'restore_from_checkpoint' as const };

/** Each step answers from the script (a step the script leaves out reports nothing); a step scripted to throw rejects. */
function stepsFor(script: Script, calls: Run['calls']) {
  const step = (name: RestorationStepName) => async (context: RestorationMachineContext) => {
    calls.push({ step: name, context: structuredClone(context) });
    return script[name]?.() ?? {};
  };
  return Object.fromEntries(RESTORATION_STEP_NAMES.map((name) => [name, step(name)])) as Record<RestorationStepName, (context: RestorationMachineContext) => Promise<RestorationStepOutput>>;
}

async function asActor(script: Script): Promise<Run> {
  const calls: Run['calls'] = [];
  const steps = stepsFor(script, calls);
  const actors = Object.fromEntries(
    RESTORATION_STEP_NAMES.map((name) => [name, fromPromise<RestorationStepOutput, RestorationStepInput>(({ input }) => steps[name](input.context))]),
  ) as Record<RestorationStepName, ReturnType<typeof fromPromise<RestorationStepOutput, RestorationStepInput>>>;
  const actor = createActor(restorationMachine.provide({ actors }), { input: INPUT });
  actor.start();
  return { calls, output: await toPromise(actor) };
}

async function asSteps(script: Script): Promise<Run> {
  const calls: Run['calls'] = [];
  return { calls, output: await runRestorationSteps(INPUT, stepsFor(script, calls)) };
}

const PATHS: Record<string, Script> = {
  'a valid row': {
    loadState: () => ({ found: true }),
    validateState: () => ({ validation: valid, warnings: valid.warnings }),
    restoreConversation: () => ({ warnings: ['2 conversation entries are newer than the restored state; kept'] }),
    buildContextMessage: () => ({ contextMessage: 'you were restored' }),
    resumeSupervisor: () => ({ result: RESULT }),
  },
  'no stored row': {
    loadState: () => ({ found: false }),
    buildContextMessage: () => ({ contextMessage: 'you start fresh' }),
    resumeSupervisor: () => ({ result: RESULT }),
  },
  'an invalid row with a valid checkpoint': {
    loadState: () => ({ found: true }),
    validateState: () => ({ validation: invalid }),
    findValidCheckpoint: () => ({ checkpointSeq: 7, warnings: ['restored from checkpoint 7'] }),
    resumeSupervisor: () => ({ result: RESULT }),
  },
  'an invalid row and no valid checkpoint': {
    loadState: () => ({ found: true }),
    validateState: () => ({ validation: invalid }),
    findValidCheckpoint: () => ({ warnings: ['no valid checkpoint: starting fresh'] }),
    resumeSupervisor: () => ({ result: RESULT }),
  },
  'a step that fails': {
    loadState: () => ({ found: true }),
    validateState: () => ({ validation: valid }),
    reconcileTasks: () => {
      throw new Error('database unavailable');
    },
  },
};

describe('runRestorationSteps', () => {
  for (const [path, script] of Object.entries(PATHS)) {
    it(`takes the machine's path for ${path}: the same steps, contexts and output`, async () => {
      const [actor, steps] = [await asActor(script), await asSteps(script)];
      expect(steps.calls.map((call) => call.step)).toEqual(actor.calls.map((call) => call.step));
      expect(steps.calls).toEqual(actor.calls);
      expect(steps.output).toEqual(actor.output);
    });
  }

  it('ends a failed step with its error and no result', async () => {
    const { calls, output } = await asSteps(PATHS['a step that fails']!);
    expect(calls.map((call) => call.step)).toEqual(['loadState', 'validateState', 'restoreConversation', 'redeliverQuestions', 'reconcileTasks']);
    expect(output).toEqual({ result: null, error: 'database unavailable' });
  });

  it('starts fresh with a warning when no row is stored', async () => {
    const { calls } = await asSteps(PATHS['no stored row']!);
    expect(calls.map((call) => call.step)).toEqual(['loadState', 'startFresh', 'buildContextMessage', 'markRestored', 'resumeSupervisor']);
    expect(calls.at(-1)?.context).toMatchObject({ recoveryAction: 'start_fresh', warnings: ['no stored state: starting fresh'], contextMessage: 'you start fresh' });
  });
});
