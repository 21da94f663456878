// Postgres cannot store U+0000 in text or jsonb. A request carrying one is refused at the edge with a 400 that names
// the field, before any handler runs, instead of failing in the database as a 500.

import type { FastifyInstance } from 'fastify';
import { RequestValidationError } from './errors.js';

const NUL = '\u0000';

/** Paths (`body.answer`, `body.choices.1`) of every string or key that holds a NUL character. */
export function nulPaths(value: unknown, path: string, found: string[] = []): string[] {
  if (typeof value === 'string') {
    if (value.includes(NUL)) found.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => nulPaths(item, `${path}.${index}`, found));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes(NUL)) found.push(`${path} (a field name)`);
      nulPaths(item, `${path}.${key}`, found);
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
