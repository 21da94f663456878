// Maps every error the runtime raises to an HTTP status and a JSON body `{ error, message, ...details }`.

import { RestorationFailedError } from '../runtime/restoration.js';
import { STATUS_CODES } from 'node:http';
import type { FastifySchemaValidationError } from 'fastify';
import {
  DatabaseUnavailableError,
  EventRefusedError,
  InvalidSnapshotError,
  InvalidSupervisorDataError,
  SupervisorNotFoundError,
  SupervisorRuntimeError,
  UnknownDriverError,
  errorText,
} from '../domain/errors.js';
import {
  OwnershipLostError,
  QuestionAlreadyAnsweredError,
  StaleWriteError,
  SupervisorOwnedElsewhereError,
  RuntimeStoppedError,
  SaveFailedError,
  SupervisorNotRunningError,
  TaskNotFoundError,
  CheckpointNotFoundError,
  ForkRefusedError,
} from '../runtime/errors.js';
import { patternRule, SENDABLE_EVENT_TYPES } from './schemas.js';

/** Every error response has this shape; `error` is the error class name (or the HTTP reason for protocol errors). */
export interface ApiErrorBody {
  error: string;
  message: string;
  [detail: string]: unknown;
}

export interface ErrorReply {
  statusCode: number;
  body: ApiErrorBody;
  /** Not one of ours: the daemon logs it (once) because nobody else will. */
  unexpected: boolean;
}

/** A request without the bearer token the daemon was started with. */
export class UnauthorizedError extends SupervisorRuntimeError {
  override readonly name = 'UnauthorizedError';
  constructor() {
    super('Missing or wrong bearer token: send `Authorization: Bearer <token>` with the token the daemon was started with (SUPERVISOR_RUNTIME_TOKEN).');
  }
}

/** A tokenless daemon on loopback refuses requests addressed to any other host name (DNS rebinding). */
export class ForbiddenHostError extends SupervisorRuntimeError {
  override readonly name = 'ForbiddenHostError';
  constructor(readonly host: string) {
    super(
      `Host "${host}" is not this machine: a daemon without a token answers only requests addressed to 127.0.0.1, localhost or [::1]. ` +
        'Use one of those, or start the daemon with SUPERVISOR_RUNTIME_TOKEN to accept other names.',
    );
  }
}

/** A request body, path or query that does not match its schema; nothing was changed. */
export class RequestValidationError extends SupervisorRuntimeError {
  override readonly name = 'RequestValidationError';
  constructor(readonly problems: string[]) {
    super(`Invalid request: ${problems.join('; ')}. Nothing was changed; fix the request and retry.`);
  }
}

/**
 * An Idempotency-Key sent again with a different creation than the one it first made (another name, another checkpoint):
 * nothing was written. The key, not an id the caller never chose, is what to change.
 */
export class IdempotencyKeyReusedError extends SupervisorRuntimeError {
  override readonly name = 'IdempotencyKeyReusedError';
  constructor(
    readonly idempotencyKey: string,
    readonly operation: 'spawn' | 'fork' | 'question',
    /** The supervisor the key's first request made (spawn, fork) or asked (question). */
    readonly existingId: string,
    /** What that first request made, in words: `supervisor <id>, "name"` or `question <id>, "text"`. */
    made: string,
  ) {
    super(
      `Refusing the ${operation}: the Idempotency-Key header ${JSON.stringify(idempotencyKey)} was already used for a different ${operation} ` +
        `(it made ${made}). Nothing was written; use a new key for a new ${operation} (a key replays only the ${operation} it first made).`,
      existingId,
    );
  }
}

function pathOf(dataVar: string, error: FastifySchemaValidationError): string {
  const segments = error.instancePath.split('/').slice(1);
  return [dataVar, ...segments].join('.');
}

/** One sentence per schema error, naming the field, in words a client can act on. */
export function describeSchemaError(error: FastifySchemaValidationError, dataVar: string): string {
  const at = pathOf(dataVar, error);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      if (field === 'at') return `${at}.at is not accepted: the daemon stamps every event with its own time`;
      return `${at}.${field} is not an accepted field`;
    }
    case 'required':
      return `${at}.${String(params.missingProperty)} is required`;
    case 'discriminator': {
      const tagValue = params.tagValue;
      if (tagValue === 'RECEIVE_MESSAGE') return `${at}.type RECEIVE_MESSAGE cannot be sent from outside: a supervisor receives only what another one sends it (SEND_MESSAGE, or POST /supervisors/:id/messages)`;
      if (tagValue === 'RESTORED') return `${at}.type RESTORED cannot be sent from outside: only the restoration protocol restores (POST /supervisors/:id/resume)`;
      if (params.error === 'tag') return `${at}.type is required and must be one of ${SENDABLE_EVENT_TYPES.join(', ')}`;
      return `${at}.type ${JSON.stringify(tagValue)} is not an event type; use one of ${SENDABLE_EVENT_TYPES.join(', ')}`;
    }
    case 'format':
      return params.format === 'uuid' ? `${at} must be a UUID` : `${at} ${error.message ?? 'has the wrong format'}`;
    case 'enum':
      return `${at} must be one of ${(params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(', ')}`;
    case 'const':
      return `${at} must be ${JSON.stringify(params.allowedValue)}`;
    case 'minLength':
      return params.limit === 1 ? `${at} must not be empty` : `${at} ${error.message ?? 'is too short'}`;
    case 'pattern': {
      // Every schema pattern registers its rule in words; an unregistered one is named as it is, never guessed at.
      const rule = patternRule(String(params.pattern));
      return rule !== undefined ? `${at} must be ${rule}` : `${at} must match the pattern ${String(params.pattern)}`;
    }
    default:
      return `${at} ${error.message ?? 'is invalid'}`;
  }
}

/** Fastify's schemaErrorFormatter: the error thrown for a request that fails validation. */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  return new RequestValidationError(errors.map((error) => describeSchemaError(error, dataVar)));
}

/** Longest path parameter routed (percent-encoded as sent); ids the API hands out or accepts are at most 128. */
export const MAX_PARAM_LENGTH = 256;

function reply(statusCode: number, error: Error, details: Record<string, unknown> = {}): ErrorReply {
  return { statusCode, body: { error: error.name, message: error.message, ...details }, unexpected: false };
}

function httpStatusCode(error: unknown): number | undefined {
  const value = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof value === 'number' && value >= 400 && value < 600 ? value : undefined;
}

/** The status and body for any error a handler (or Fastify itself) raised. */
export function toErrorReply(error: unknown): ErrorReply {
  if (error instanceof RequestValidationError) return { statusCode: 400, body: { error: 'Bad Request', message: error.message, problems: error.problems }, unexpected: false };
  if (error instanceof UnauthorizedError) return reply(401, error);
  if (error instanceof ForbiddenHostError) return reply(403, error, { host: error.host });
  if (error instanceof EventRefusedError) return reply(409, error, { reason: error.reason, state: error.state, eventType: error.eventType, supervisorId: error.supervisorId });
  if (error instanceof QuestionAlreadyAnsweredError) {
    return reply(409, error, { questionId: error.questionId, firstAnswer: error.firstAnswer, answeredAt: error.answeredAt, supervisorId: error.supervisorId });
  }
  if (error instanceof SupervisorNotFoundError) return reply(404, error, { supervisorId: error.supervisorId });
  if (error instanceof TaskNotFoundError) return reply(404, error, { taskId: error.taskId });
  if (error instanceof CheckpointNotFoundError) return reply(404, error, { supervisorId: error.supervisorId, checkpointSeq: error.checkpointSeq });
  if (error instanceof ForkRefusedError) return reply(409, error, { supervisorId: error.supervisorId, checkpointSeq: error.checkpointSeq, reason: error.reason, problems: error.problems });
  if (error instanceof IdempotencyKeyReusedError) return reply(400, error, { idempotencyKey: error.idempotencyKey, supervisorId: error.existingId });
  if (error instanceof UnknownDriverError) return reply(400, error, { field: error.field, driver: error.driver, drivers: error.knownDrivers });
  if (error instanceof InvalidSupervisorDataError) return reply(400, error, { field: error.field });
  if (error instanceof SupervisorNotRunningError || error instanceof StaleWriteError) return reply(409, error, { supervisorId: error.supervisorId });
  // Another daemon runs it: the body names that daemon and where its API answers.
  if (error instanceof SupervisorOwnedElsewhereError) return reply(409, error, { supervisorId: error.supervisorId, owner: error.owner, ownerUrl: error.ownerUrl });
  if (error instanceof OwnershipLostError) return reply(409, error, { supervisorId: error.supervisorId, owner: error.current.owner });
  // The request was fine; the stored row is not. 409 because resuming from a checkpoint resolves it, as the message says.
  if (error instanceof InvalidSnapshotError) return reply(409, error, { supervisorId: error.supervisorId, problems: error.problems });
  if (error instanceof RestorationFailedError) return reply(503, error, { supervisorId: error.supervisorId });
  // `outcome` tells a client whether to retry as new (not_written) or with the same ids (unknown: it may have committed).
  if (error instanceof SaveFailedError || error instanceof DatabaseUnavailableError) return reply(503, error, { outcome: error.outcome });
  if (error instanceof RuntimeStoppedError) return reply(503, error);
  // A path segment longer than any route takes: the URL is not echoed back (it may be kilobytes).
  if ((error as { code?: unknown } | null)?.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return {
      statusCode: 414,
      body: { error: 'URI Too Long', message: `A path segment is longer than ${MAX_PARAM_LENGTH} characters; no id this API takes is (supervisor ids are UUIDs, question and task ids at most 128 characters).` },
      unexpected: false,
    };
  }
  // Fastify's own client errors: malformed JSON, body too large, wrong content type.
  const status = httpStatusCode(error);
  if (status !== undefined && status < 500 && error instanceof Error) {
    return { statusCode: status, body: { error: STATUS_CODES[status] ?? 'Bad Request', message: error.message }, unexpected: false };
  }
  const name = error instanceof Error ? error.name : 'Error';
  return {
    statusCode: 500,
    body: { error: name, message: `Internal error: ${errorText(error)}. It is logged by the daemon; retry, and report it if it persists.` },
    unexpected: true,
  };
}
