// Public API of supervisor-runtime.
export * from './domain/index.js';
export * from './persistence/index.js';
