// Postgres cannot store U+0000 in text or jsonb. A request carrying one is refused at the edge with a 400 that names
// the field, before any handler runs, instead of failing in the database as a 500.

import type { FastifyInstance } from 'fastify';
import { RequestValidationError } from './errors.js';

const NUL = '\u0000';

/** No field of the API nests more than a few levels; a body nested deeper is refused before it is walked further. */
export const MAX_NESTING = 32;

/** A request whose JSON nests deeper than MAX_NESTING (a 60 KB body of brackets is 30 000 levels). */
export class NestingTooDeepError extends RequestValidationError {
  constructor(readonly path: string) {
    super([`${path} nests arrays or objects more than ${MAX_NESTING} levels deep; no field of this API does, send the fields the route documents`]);
  }
}

/**
 * Paths (`body.answer`, `body.choices.1`) of every string or key that holds a NUL character. Throws
 * NestingTooDeepError past MAX_NESTING levels, so a hostile body cannot overflow the stack.
 */
export function nulPaths(value: unknown, path: string, found: string[] = [], depth = 0): string[] {
  if (typeof value === 'string') {
    if (value.includes(NUL)) found.push(path);
  } else if (typeof value === 'object' && value !== null) {
    if (depth >= MAX_NESTING) throw new NestingTooDeepError(path);
    if (Array.isArray(value)) {
      value.forEach((item, index) => nulPaths(item, `${path}.${index}`, found, depth + 1));
    } else {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes(NUL)) found.push(`${path} (a field name)`);
        nulPaths(item, `${path}.${key}`, found, depth + 1);
      }
    }
  }
  return found;
}

export function refuseNulCharacters(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const found = [...nulPaths(request.params, 'params'), ...nulPaths(request.query, 'querystring'), ...nulPaths(request.body, 'body')];
    if (found.length > 0) {
      throw new RequestValidationError(found.map((path) => `${path} contains a NUL character (U+0000), which cannot be stored; remove it`));
    }
  });
}
