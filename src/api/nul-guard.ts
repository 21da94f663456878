// Postgres cannot store U+0000 in text or jsonb, nor a lone UTF-16 surrogate (JSON's "\ud800" without its pair is not
// Unicode). A request carrying either is refused at the edge with a 400 that names the field, before any handler runs,
// instead of failing in the database.

import type { FastifyInstance } from 'fastify';
import { unstorableText, type UnstorableText } from '../domain/storable-text.js';
import { RequestValidationError } from './errors.js';

/** No field of the API nests more than a few levels; a body nested deeper is refused before it is walked further. */
export const MAX_NESTING = 32;

/** A request whose JSON nests deeper than MAX_NESTING (a 60 KB body of brackets is 30 000 levels). */
export class NestingTooDeepError extends RequestValidationError {
  constructor(readonly path: string) {
    super([`${path} nests arrays or objects more than ${MAX_NESTING} levels deep; no field of this API does, send the fields the route documents`]);
  }
}

const PROBLEMS: Record<UnstorableText, string> = {
  nul: 'contains a NUL character (U+0000), which cannot be stored; remove it',
  lone_surrogate: 'contains a lone UTF-16 surrogate (such as \\ud800 without its pair), which is not Unicode text and cannot be stored; send well-formed text',
};

function problemOf(text: string): string | null {
  const problem = unstorableText(text);
  return problem ? PROBLEMS[problem] : null;
}

/**
 * Every string or key that cannot be stored (`body.answer`, `body.choices.1`), with why. Throws NestingTooDeepError
 * past MAX_NESTING levels, so a hostile body cannot overflow the stack.
 */
export function unstorablePaths(value: unknown, path: string, found: string[] = [], depth = 0): string[] {
  if (typeof value === 'string') {
    const problem = problemOf(value);
    if (problem) found.push(`${path} ${problem}`);
  } else if (typeof value === 'object' && value !== null) {
    if (depth >= MAX_NESTING) throw new NestingTooDeepError(path);
    if (Array.isArray(value)) {
      value.forEach((item, index) => unstorablePaths(item, `${path}.${index}`, found, depth + 1));
    } else {
      for (const [key, item] of Object.entries(value)) {
        const problem = problemOf(key);
        if (problem) found.push(`${path} (a field name) ${problem}`);
        unstorablePaths(item, `${path}.${key}`, found, depth + 1);
      }
    }
  }
  return found;
}

export function refuseUnstorableText(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const found = [...unstorablePaths(request.params, 'params'), ...unstorablePaths(request.query, 'querystring'), ...unstorablePaths(request.body, 'body')];
    if (found.length > 0) throw new RequestValidationError(found);
  });
}
