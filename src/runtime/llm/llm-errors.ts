// Typed errors of the LLM driver: each names the model server and says what to change.

import { SupervisorRuntimeError } from '../../domain/errors.js';

/** Said at the end of every model error: this request applied nothing, and how the driver gets another try. */
function untouched(supervisorId: string | undefined): string {
  if (!supervisorId) return '';
  return (
    ` Nothing from this request was applied to supervisor ${supervisorId} (what earlier replies did is committed); the driver ` +
    `asks again at its next answer or task result, or now with \`supervisor-runtime resume ${supervisorId}\` once the server answers.`
  );
}

/** The base of every model error; `retryable` says whether the same request may succeed later. */
export class LlmDriverError extends SupervisorRuntimeError {
  override readonly name: string = 'LlmDriverError';
  constructor(
    message: string,
    readonly endpoint: string,
    readonly retryable: boolean,
    supervisorId?: string,
    /** `applied`: the error comes after the model's tool calls were applied, so the "nothing applied" note is left out. */
    options: { cause?: unknown; applied?: boolean } = {},
  ) {
    super(message + (options.applied ? '' : untouched(supervisorId)), supervisorId, { cause: options.cause });
  }
}

/** No connection (refused, DNS, reset): the server is not running or the base URL is wrong. */
export class LlmUnreachableError extends LlmDriverError {
  override readonly name = 'LlmUnreachableError';
  constructor(endpoint: string, detail: string, supervisorId?: string, cause?: unknown) {
    super(
      `Could not reach the model server at ${endpoint} (${detail}). Check that it runs and that SUPERVISOR_RUNTIME_LLM_BASE_URL ` +
        'points at its OpenAI-compatible base (for Ollama http://127.0.0.1:11434/v1, for llama.cpp server http://127.0.0.1:8080/v1).',
      endpoint,
      true,
      supervisorId,
      { cause },
    );
  }
}

/** The server took longer than the request timeout (connecting, thinking or sending the reply). */
export class LlmTimeoutError extends LlmDriverError {
  override readonly name = 'LlmTimeoutError';
  constructor(
    endpoint: string,
    readonly timeoutMs: number,
    supervisorId?: string,
  ) {
    super(
      `The model server at ${endpoint} did not answer within ${timeoutMs} ms. A large model on a small machine may need longer: ` +
        'raise SUPERVISOR_RUNTIME_LLM_TIMEOUT_MS, or use a smaller model.',
      endpoint,
      true,
      supervisorId,
    );
  }
}

// 408, 409, 425 and 429 say "later"; 5xx is the server's own trouble. The other 4xx say the request is wrong.
const RETRYABLE_STATUS = new Set([408, 409, 425, 429]);

function statusAdvice(status: number): string {
  if (status === 401 || status === 403) return 'The server refused the API key: set SUPERVISOR_RUNTIME_LLM_API_KEY to a key it accepts (a local server usually needs none).';
  if (status === 404) {
    return 'Check SUPERVISOR_RUNTIME_LLM_BASE_URL (the driver posts to <base>/chat/completions, so the base usually ends in /v1) and that SUPERVISOR_RUNTIME_LLM_MODEL names a model the server has (`ollama list`, or GET <base>/models).';
  }
  if (status === 429) return 'The server is rate-limiting: the driver retried with backoff; lower the load or raise the limit.';
  if (status >= 500) return 'The server failed: the driver retried with backoff; check the model server\'s own log.';
  return 'The server refused the request: check that the model supports tool calls (function calling) and the server\'s log for why.';
}

/** The server answered with an error status. */
export class LlmHttpError extends LlmDriverError {
  override readonly name = 'LlmHttpError';
  constructor(
    endpoint: string,
    readonly status: number,
    /** The start of the reply's body, for the log. */
    readonly body: string,
    /** From a Retry-After header, when the server sent one. */
    readonly retryAfterMs: number | null,
    supervisorId?: string,
  ) {
    super(
      `The model server at ${endpoint} answered HTTP ${status}${body ? `: ${body}` : ''}. ${statusAdvice(status)}`,
      endpoint,
      RETRYABLE_STATUS.has(status) || status >= 500,
      supervisorId,
    );
  }
}

/** A 2xx reply that is not a chat completion: usually a base URL that points at something else. */
export class LlmMalformedResponseError extends LlmDriverError {
  override readonly name = 'LlmMalformedResponseError';
  constructor(
    endpoint: string,
    readonly problem: string,
    supervisorId?: string,
  ) {
    super(
      `The model server at ${endpoint} answered with something that is not an OpenAI chat completion (${problem}). ` +
        'Check that SUPERVISOR_RUNTIME_LLM_BASE_URL is an OpenAI-compatible API base (it usually ends in /v1).',
      endpoint,
      false,
      supervisorId,
    );
  }
}

/** The model kept calling tools past the bound of rounds for one callback; what it did so far is committed. */
export class LlmRoundLimitError extends LlmDriverError {
  override readonly name = 'LlmRoundLimitError';
  constructor(
    endpoint: string,
    readonly rounds: number,
    supervisorId: string,
  ) {
    super(
      `Supervisor ${supervisorId}: the model was still calling tools after ${rounds} rounds, so the driver stopped asking it ` +
        '(every tool call it made so far is committed). Raise SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS if it needs more per turn, or use a model that ends its turn.',
      endpoint,
      false,
      supervisorId,
      { applied: true },
    );
  }
}
