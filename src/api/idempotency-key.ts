// The Idempotency-Key header: a client that lets the daemon choose the id of what it creates (a supervisor, a
// question, a task) can still retry a write whose outcome it did not learn. The key names the id: the same key, in
// the same place, always gives the same UUID, so the retry meets the caller-id replay every creation route has.

import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { RequestValidationError } from './errors.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Visible ASCII, as in the IETF draft's examples; long enough for a UUID or a client's own composite key. */
const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The id a creation route uses when the body names none: derived from the request's Idempotency-Key and `scope`
 * (where the id lives: the supervisor list, or one supervisor's questions or tasks), or undefined without the header.
 * When the body names the id, that id is the idempotency key and the header is not consulted.
 */
export function idFromIdempotencyKey(request: FastifyRequest, scope: string): string | undefined {
  const header = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header : [header];
  if (key.length !== 1 || !KEY.test(key[0] ?? '')) {
    throw new RequestValidationError(['the Idempotency-Key header must be one value of 1 to 255 visible ASCII characters (a UUID will do)']);
  }
  const hash = createHash('sha256').update(`supervisor-runtime idempotency key\n${scope}\n${key[0]}`).digest();
  // An RFC 9562 version 8 (custom) UUID: the hash's first 16 bytes with the version and variant bits set.
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x80;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The request's Idempotency-Key as sent (read after idFromIdempotencyKey has accepted it), or undefined without one. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers[IDEMPOTENCY_KEY_HEADER];
  return typeof header === 'string' ? header : undefined;
}
