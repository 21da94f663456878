// How the client commands talk to a running daemon: JSON over HTTP with fetch, errors turned into sentences.

import { randomUUID } from 'node:crypto';
import { SupervisorRuntimeError } from '../../domain/errors.js';
import type { ApiErrorBody } from '../../api/errors.js';
import type { CliIo, OptionSpec } from '../command.js';
import { clientSettings, DEFAULT_CLIENT_TIMEOUT_MS, type ClientSettings } from '../config.js';

/** Nothing listens at the URL (or the host is unknown). */
export class DaemonUnreachableError extends SupervisorRuntimeError {
  override readonly name = 'DaemonUnreachableError';
  constructor(readonly url: string) {
    super(`No supervisor-runtime daemon answers at ${url}: start one with \`npx supervisor-runtime daemon\` (or npm start).`);
  }
}

/** Something answered, but too slowly to be a healthy daemon. */
export class DaemonTimeoutError extends SupervisorRuntimeError {
  override readonly name = 'DaemonTimeoutError';
  constructor(url: string, timeoutMs: number, readonly idempotencyKey?: string) {
    super(
      `The daemon at ${url} did not answer within ${timeoutMs / 1000} s: it may be overloaded or stuck; check its log and retry` +
        (idempotencyKey !== undefined
          ? `. The write may have been applied: run the same command again with --idempotency-key ${idempotencyKey} and it is applied once, never twice.`
          : '.'),
    );
  }
}

/** The option of the commands that create something (spawn, ask): the key that makes their retry safe. */
export const IDEMPOTENCY_KEY_OPTION = 'idempotency-key';
export const IDEMPOTENCY_KEY_HELP = `  --idempotency-key K a retry with the same key is applied once (default: a new one, printed if the daemon times out)`;

/**
 * The daemon names what it refused by where it sits in the HTTP request (`params.id`, `body.taskId`, `querystring.limit`),
 * and what to do next by an HTTP route (`POST /supervisors/:id/resume`); a person at the command line typed an
 * argument, a JSON field or a flag, and runs a command. Say it in those words. A route's `:id` is the supervisor the
 * request named.
 */
type Words = string | ((supervisorId: string, ...groups: string[]) => string);
const CLI_WORDS: Array<[RegExp, Words]> = [
  [/\bparams\.id must be a UUID\b/g, 'the supervisor id must be a UUID like 11111111-1111-4111-8111-111111111111 (`supervisor-runtime status` lists them)'],
  [/\bparams\.id\b/g, 'the supervisor id'],
  [/\bparams\.questionId\b/g, 'the question id'],
  [/\bparams\.taskId\b/g, 'the task id'],
  [/\bthe Idempotency-Key header\b/g, '--idempotency-key'],
  [/\bquerystring\.(\w+)/g, '--$1'],
  [/\bbody\.(\w+)/g, 'the field "$1"'],
  [/^body (must|is)\b/g, 'the JSON $1'],
  [/\bcreate it with POST \/supervisors\b/g, (id) => `create one with \`supervisor-runtime spawn <name>\`, or start a fresh one under this id with \`supervisor-runtime resume ${id} --start-fresh-if-missing\``],
  [/\bPOST \/supervisors\/([^/\s]+)\/resume\b/g, (id, named = ':id') => `\`supervisor-runtime resume ${named === ':id' ? id : named}\``],
  [/\bGET \/supervisors\/([^/\s]+)\/checkpoints\b/g, (id, named = ':id') => `\`supervisor-runtime checkpoints ${named === ':id' ? id : named}\``],
  [/\bPOST \/supervisors\/:id\/messages\b/g, '`supervisor-runtime message <fromId> <toId> <text…>`'],
];

/** A daemon's message in the command line's words; `supervisorId` fills the routes' `:id` (default `<id>`). */
export function inCliWords(message: string, supervisorId = '<id>'): string {
  return CLI_WORDS.reduce((text, [pattern, words]) => {
    if (typeof words === 'string') return text.replace(pattern, words);
    // The replacer gets the match, its groups, then the offset (a number) and the whole text.
    return text.replace(pattern, (_match, ...rest: unknown[]) => words(supervisorId, ...rest.slice(0, rest.findIndex((arg) => typeof arg === 'number')).map(String)));
  }, message);
}

/** The supervisor a request concerns: the one the error names, else the one in its path. */
function supervisorOf(body: ApiErrorBody, path: string): string | undefined {
  if (typeof body.supervisorId === 'string' && body.supervisorId !== '') return body.supervisorId;
  const inPath = /^\/supervisors\/([^/?]+)/.exec(path)?.[1];
  if (inPath === undefined) return undefined;
  try {
    return decodeURIComponent(inPath);
  } catch {
    return inPath;
  }
}

/** The daemon refused the request; the message is the daemon's own (in the CLI's words), which says what to do. */
export class DaemonRequestError extends SupervisorRuntimeError {
  override readonly name = 'DaemonRequestError';
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    /** The request's path, whose supervisor fills the routes the message names. */
    path = '',
  ) {
    super(inCliWords(body.message, supervisorOf(body, path)));
  }
}

export interface DaemonClient {
  readonly url: string;
  get<T>(path: string): Promise<T>;
  /** With `idempotencyKey`, sent as the Idempotency-Key header, and named in the timeout error so the retry is safe. */
  post<T>(path: string, body: unknown, options?: { idempotencyKey?: string }): Promise<T>;
}


/** The option every client command takes, and the lines of help that describe it. */
export const clientOptions: OptionSpec = { url: { type: 'string' } };
export const CLIENT_HELP = `  --url URL           the daemon (default: $SUPERVISOR_RUNTIME_URL or http://127.0.0.1:7077)
The bearer token in $SUPERVISOR_RUNTIME_TOKEN is sent when set.`;

function isApiErrorBody(value: unknown): value is ApiErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as ApiErrorBody).message === 'string' && typeof (value as ApiErrorBody).error === 'string';
}

export function createDaemonClient(settings: ClientSettings, timeoutMs = settings.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS): DaemonClient {
  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    if (settings.token) headers.authorization = `Bearer ${settings.token}`;
    let response: Response;
    try {
      response = await fetch(`${settings.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') throw new DaemonTimeoutError(settings.url, timeoutMs, idempotencyKey);
      // fetch reports every network failure (refused, reset, unknown host) as a TypeError with the cause inside.
      throw new DaemonUnreachableError(settings.url);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.ok && parsed !== undefined) return parsed as T;
    if (isApiErrorBody(parsed)) throw new DaemonRequestError(response.status, parsed, path);
    throw new DaemonRequestError(response.status, {
      error: 'UnexpectedResponse',
      message:
        `The server at ${settings.url} answered ${method} ${path} with ${response.status} ${response.headers.get('content-type') ?? 'and no content type'}, ` +
        'not the supervisor-runtime API: check --url or SUPERVISOR_RUNTIME_URL.',
    });
  }
  return {
    url: settings.url,
    get: (path) => request('GET', path),
    post: (path, body, options) => request('POST', path, body, options?.idempotencyKey),
  };
}

/** The client for a command's `--url` flag and environment. */
export function daemonClientFor(io: CliIo, values: Record<string, string | boolean | string[] | undefined>): DaemonClient {
  return createDaemonClient(clientSettings(io.env, { url: typeof values.url === 'string' ? values.url : undefined }));
}

/** The key a creating command sends: the one given with --idempotency-key, or a new one for this run. */
export function idempotencyKeyOf(values: Record<string, string | boolean | string[] | undefined>): string {
  const given = values[IDEMPOTENCY_KEY_OPTION];
  return typeof given === 'string' ? given : randomUUID();
}
