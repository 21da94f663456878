// Turns driver errors into the project's typed errors, so callers can tell bad data from a lost database.

import { DatabaseUnavailableError, InvalidSupervisorDataError, SupervisorRuntimeError } from '../domain/errors.js';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);

function code(error: unknown): string | undefined {
  const value = (error as { code?: unknown } | null)?.code;
  return typeof value === 'string' ? value : undefined;
}

export function isConnectionError(error: unknown): boolean {
  const c = code(error);
  if (c && (CONNECTION_CODES.has(c) || /^(08|57P|53)/.test(c))) return true;
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|PGlite is closed|Cannot use a pool after calling end|Driver has already been destroyed/i.test(
    message,
  );
}

/** Rethrow `error` as a typed error: unreachable database, or data the schema refused. */
export function classifyDatabaseError(error: unknown, operation: string, supervisorId: string | undefined): Error {
  if (error instanceof SupervisorRuntimeError) return error;
  if (isConnectionError(error)) return new DatabaseUnavailableError(operation, supervisorId, error);
  const c = code(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (c === '23514' || c === '22P02' || c === '22023' || c === '23502' || c === '22003' || c === '22P05' || c === '22021') {
    return new InvalidSupervisorDataError(supervisorId ?? '(none)', 'a value', `was refused by the database (${detail})`);
  }
  return error instanceof Error ? error : new Error(detail);
}

export async function withDatabaseErrors<T>(operation: string, supervisorId: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw classifyDatabaseError(error, operation, supervisorId);
  }
}
