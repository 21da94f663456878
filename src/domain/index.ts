export * from './supervisor-state.js';
export * from './pending-question.js';
export * from './spawned-task.js';
export * from './conversation.js';
export * from './restoration.js';
export * from './errors.js';
export * from './ids.js';
