export * from './database.js';
export * from './migrator.js';
export * from './schema.js';
export * from './supervisor-repository.js';
export * from './ownership/index.js';
export { parsePendingQuestions } from './row-parsers.js';
