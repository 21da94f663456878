// Runs the restoration protocol without an actor: it walks the restoration machine's own config (invoke, onDone with
// its guards and actions, onError, final states) and applies the same named updates and guards, so the steps run in
// the same order with the same context. Restoring without an inspector costs a fraction of an actor (XState spawns a
// child actor, an AbortController and a macrostep per step); with an inspector the runtime runs the actor instead.

import {
  initialRestorationContext,
  restorationGuards,
  restorationMachine,
  restorationOutput,
  restorationUpdates,
  type RestorationInput,
  type RestorationMachineContext,
  type RestorationOutput,
  type RestorationStepEvent,
  type RestorationStepName,
  type RestorationStepOutput,
} from './restoration-machine.js';

export type { RestorationStepName };

/** A step of the protocol; it is handed the machine's context as it was when the step began. */
export type RestorationStep = (context: RestorationMachineContext) => Promise<RestorationStepOutput>;

type UpdateName = keyof typeof restorationUpdates;
type GuardName = keyof typeof restorationGuards;

interface TransitionConfig {
  target: string;
  guard?: GuardName;
  actions?: UpdateName | UpdateName[];
}

interface StateConfig {
  type?: 'final';
  invoke?: { src: RestorationStepName; onDone: TransitionConfig | TransitionConfig[]; onError: TransitionConfig };
}

interface MachineConfig {
  initial: string;
  states: Record<string, StateConfig>;
}

/** The machine's config read once, in the shape this runner follows; anything else is refused at once. */
function protocolConfig(): MachineConfig {
  const config = restorationMachine.config as unknown as MachineConfig;
  for (const [name, state] of Object.entries(config.states)) {
    if (state.type === 'final') continue;
    const transitions = state.invoke ? [...(Array.isArray(state.invoke.onDone) ? state.invoke.onDone : [state.invoke.onDone]), state.invoke.onError] : [];
    // Every onDone list ends unguarded, so a finished step always leaves its state (as it must for an actor not to hang).
    const done = state.invoke ? [state.invoke.onDone].flat() : [];
    const known = transitions.length > 0 && done.at(-1)?.guard === undefined && transitions.every((t) => typeof t.target === 'string' && t.target in config.states && (t.guard === undefined || t.guard in restorationGuards) && [t.actions ?? []].flat().every((a) => a in restorationUpdates));
    if (!known) throw new Error(`restoration machine state ${name} has a shape runRestorationSteps does not follow: run it as an actor, or teach the runner`);
  }
  return config;
}

let config: MachineConfig | null = null;

/** A state's transitions as lists, read once: a restore-all walks them 10 times per supervisor. */
interface NormalizedStep {
  src: RestorationStepName;
  onDone: ReadonlyArray<TransitionConfig & { actionList: readonly UpdateName[] }>;
  onError: TransitionConfig & { actionList: readonly UpdateName[] };
}

const withActionList = (transition: TransitionConfig) => ({ ...transition, actionList: [transition.actions ?? []].flat() });

let stepsByState: Map<string, NormalizedStep> | null = null;

function normalizedSteps(machine: MachineConfig): Map<string, NormalizedStep> {
  const result = new Map<string, NormalizedStep>();
  for (const [name, state] of Object.entries(machine.states)) {
    if (!state.invoke) continue;
    result.set(name, { src: state.invoke.src, onDone: [state.invoke.onDone].flat().map(withActionList), onError: withActionList(state.invoke.onError) });
  }
  return result;
}

function apply(context: RestorationMachineContext, transition: { actionList: readonly UpdateName[] }, event: RestorationStepEvent): RestorationMachineContext {
  let next = context;
  for (const name of transition.actionList) next = { ...next, ...restorationUpdates[name](next, event) };
  return next;
}

/**
 * Run the protocol's steps as the restoration machine orders them and return its output. `visit` hears each state
 * entered, in order (the same states an actor would pass through).
 */
export async function runRestorationSteps(input: RestorationInput, steps: Record<RestorationStepName, RestorationStep>, visit?: (state: string) => void): Promise<RestorationOutput> {
  config ??= protocolConfig();
  stepsByState ??= normalizedSteps(config);
  let context = initialRestorationContext(input);
  let stateName = config.initial;
  for (;;) {
    visit?.(stateName);
    const state = stepsByState.get(stateName);
    if (!state) return restorationOutput(context);
    const { src, onDone, onError } = state;
    let event: RestorationStepEvent;
    let chosen: (TransitionConfig & { actionList: readonly UpdateName[] }) | undefined;
    try {
      event = { output: await steps[src](context) };
      chosen = onDone.find((candidate) => candidate.guard === undefined || restorationGuards[candidate.guard](event));
    } catch (error) {
      event = { error };
      chosen = onError;
    }
    if (!chosen) throw new Error(`restoration step ${src} ended with no transition out of ${stateName}`);
    context = apply(context, chosen, event);
    stateName = chosen.target;
  }
}
