// The supervisor machine's public surface: the machine, its vocabulary, its checks and its diagram.

export {
  SUPERVISOR_MACHINE_VERSION,
  deriveWaitingState,
  effectsOf,
  explainRefusal,
  supervisorMachine,
  SupervisorInputMissingError,
  transitionSupervisor,
  type SupervisorSnapshot,
} from './supervisor-machine.js';
export { supervisorMermaidDiagram } from './supervisor-diagram.js';
export * from './supervisor-guards.js';
export { initialSupervisorContext, resumeTarget, type SupervisorUpdate } from './supervisor-updates.js';
export * from './supervisor-types.js';
