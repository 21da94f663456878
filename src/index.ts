// Public API of supervisor-runtime: machines, persistence, transport and the runtime that wires them.
export * from './domain/index.js';
export * from './machines/index.js';
export { buildRestorationContextMessage } from './machines/restoration-context.js';
export { RESTORATION_GUARDS, validateStoredState } from './machines/restoration-guards.js';
export { restorationMachine } from './machines/restoration-machine.js';
export { checkStoredStates, type CheckOptions, type CheckReport, type CheckVerdict, type SupervisorCheck } from './runtime/check.js';
export * from './persistence/index.js';
export * from './transport/index.js';
export * from './runtime/index.js';
export { createApiServer } from './api/server.js';
export { startDaemon, type Daemon } from './daemon/start-daemon.js';
