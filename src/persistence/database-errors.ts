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

/**
 * A connection lost while a statement was in flight (reset, terminated, the server shutting the session down): the
 * statement may have committed before the reply was lost. Refused or unreachable connections never ran anything.
 */
function lostMidStatement(error: unknown): boolean {
  const c = code(error);
  if (c === 'ECONNRESET' || c === 'EPIPE' || c === '57P01' || c === '57P02') return true;
  if (error instanceof AggregateError) return error.errors.some(lostMidStatement);
  return /Connection terminated unexpectedly|Client has encountered a connection error/i.test(error instanceof Error ? error.message : '');
}

/**
 * The server did not answer in time: a statement past its bound (SR_QUERY_TIMEOUT), or a new connection whose
 * handshake it never answered. Another attempt would wait as long again.
 */
export function isNoAnswer(error: unknown): boolean {
  if (code(error) === 'SR_QUERY_TIMEOUT') return true;
  return /Connection terminated due to connection timeout|timeout exceeded when trying to connect/i.test(error instanceof Error ? error.message : '');
}

/** Postgres' 3F000: the search_path names no existing schema to create tables in (here or in a cause). */
export function isNoSchemaSelected(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (code(current) === '3F000') return true;
  }
  return false;
}

/** Rethrow `error` as a typed error: unreachable database, or data the schema refused. */
export function classifyDatabaseError(error: unknown, operation: string, supervisorId: string | undefined): Error {
  if (error instanceof SupervisorRuntimeError) return error;
  const c = code(error);
  // The server stopped answering while the statement ran (the client gave up): it may have committed.
  if (c === 'SR_QUERY_TIMEOUT') return new DatabaseUnavailableError(operation, supervisorId, error, 'unknown');
  // The server cancelled it (statement_timeout, or an operator): rolled back, nothing was written.
  if (c === '57014') return new DatabaseUnavailableError(operation, supervisorId, error);
  if (isConnectionError(error)) return new DatabaseUnavailableError(operation, supervisorId, error, lostMidStatement(error) ? 'unknown' : 'not_written');
  const detail = error instanceof Error ? error.message : String(error);
  if (c === '23505' && (error as { constraint?: unknown }).constraint === 'supervisor_tasks_pkey') {
    const key = /\(id\)=\((.*)\)/.exec(String((error as { detail?: unknown }).detail ?? ''))?.[1];
    return new InvalidSupervisorDataError(
      supervisorId ?? '(none)',
      'task id',
      `${key === undefined ? 'of a spawned task' : `"${key}"`} is already taken by another supervisor's task; nothing was written: spawn it under another id (or leave the id out and one is made up)`,
    );
  }
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
