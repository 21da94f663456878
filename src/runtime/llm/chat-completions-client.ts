// One POST to an OpenAI-compatible /chat/completions with tools: timeout, bounded retries with backoff, typed errors.

import { errorText } from '../../domain/errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { LlmDriverError, LlmHttpError, LlmMalformedResponseError, LlmTimeoutError, LlmUnreachableError } from './llm-errors.js';

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: ChatToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A JSON Schema, as the tools' `parameters` carry it. */
export interface JsonSchema {
  type: 'object' | 'string' | 'integer' | 'number' | 'array' | 'boolean';
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  additionalProperties?: boolean;
}

export interface ChatTool {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

/** What the model answered: its text (possibly empty) and the tool calls it wants made, in order. */
export interface AssistantReply {
  content: string;
  toolCalls: ChatToolCall[];
  finishReason: string | null;
}

export interface ChatCompletionsClientOptions {
  /** The API base, e.g. http://127.0.0.1:11434/v1; requests go to `${baseUrl}/chat/completions`. */
  baseUrl: string;
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string | undefined;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** One attempt, from sending to the last byte of the reply (default 60 000). */
  requestTimeoutMs?: number;
  /** Attempts after the first for errors that may pass: no connection, timeout, 408/409/425/429, 5xx (default 3). */
  maxRetries?: number;
  /** Backoff before retry n is this times 2^(n-1), ±20 %, at most 30 s; a Retry-After header wins (default 500). */
  retryBaseDelayMs?: number;
  temperature?: number | undefined;
  logger?: Logger;
}

export interface ChatCompletionsClient {
  readonly endpoint: string;
  complete(messages: readonly ChatMessage[], tools: readonly ChatTool[], supervisorId: string): Promise<AssistantReply>;
}

const MAX_BACKOFF_MS = 30_000;
const BODY_EXCERPT = 300;

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_EXCERPT ? `${flat.slice(0, BODY_EXCERPT)}…` : flat;
}

function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_BACKOFF_MS);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.min(Math.max(0, date - Date.now()), MAX_BACKOFF_MS);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The first choice's message. Servers differ in small ways that are accepted: `arguments` as an object instead of a
 * JSON string, a missing call id, `content` null next to tool calls.
 */
export function parseChatCompletion(text: string, endpoint: string, supervisorId: string): AssistantReply {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LlmMalformedResponseError(endpoint, `the body is not JSON: ${JSON.stringify(excerpt(text))}`, supervisorId);
  }
  const choice = isRecord(body) && Array.isArray(body.choices) ? (body.choices[0] as unknown) : undefined;
  if (!isRecord(choice) || !isRecord(choice.message)) {
    throw new LlmMalformedResponseError(endpoint, `no choices[0].message in ${JSON.stringify(excerpt(text))}`, supervisorId);
  }
  const message = choice.message;
  if (message.content !== undefined && message.content !== null && typeof message.content !== 'string') {
    throw new LlmMalformedResponseError(endpoint, 'choices[0].message.content is neither text nor null', supervisorId);
  }
  const rawCalls = message.tool_calls ?? [];
  if (!Array.isArray(rawCalls)) throw new LlmMalformedResponseError(endpoint, 'choices[0].message.tool_calls is not a list', supervisorId);
  const toolCalls = rawCalls.map((raw: unknown, index): ChatToolCall => {
    const fn = isRecord(raw) ? raw.function : undefined;
    if (!isRecord(raw) || !isRecord(fn) || typeof fn.name !== 'string') {
      throw new LlmMalformedResponseError(endpoint, `tool_calls[${index}] has no function name`, supervisorId);
    }
    const args = fn.arguments === undefined || fn.arguments === null ? '{}' : typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments);
    const id = typeof raw.id === 'string' && raw.id !== '' ? raw.id : `call_${index}`;
    return { id, type: 'function', function: { name: fn.name, arguments: args } };
  });
  return {
    content: typeof message.content === 'string' ? message.content : '',
    toolCalls,
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null,
  };
}

export function createChatCompletionsClient(options: ChatCompletionsClientOptions): ChatCompletionsClient {
  const endpoint = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.requestTimeoutMs ?? 60_000;
  const maxRetries = options.maxRetries ?? 3;
  const baseDelayMs = options.retryBaseDelayMs ?? 500;
  const logger = options.logger ?? silentLogger;

  async function attempt(body: string, supervisorId: string): Promise<AssistantReply> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      // The timeout covers the whole reply: a server that sends headers and then stalls times out as well.
      const response = await fetchImpl(endpoint, { method: 'POST', headers, body, signal });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw new LlmTimeoutError(endpoint, timeoutMs, supervisorId);
      const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
      throw new LlmUnreachableError(endpoint, errorText(cause), supervisorId, error);
    }
    if (status < 200 || status > 299) throw new LlmHttpError(endpoint, status, excerpt(text), retryAfterMs(retryAfter), supervisorId);
    return parseChatCompletion(text, endpoint, supervisorId);
  }

  return {
    endpoint,
    async complete(messages, tools, supervisorId) {
      const body = JSON.stringify({
        model: options.model,
        messages,
        tools,
        tool_choice: 'auto',
        ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      });
      for (let retry = 0; ; retry += 1) {
        try {
          return await attempt(body, supervisorId);
        } catch (error) {
          if (!(error instanceof LlmDriverError) || !error.retryable || retry >= maxRetries) throw error;
          const backoff = Math.min(baseDelayMs * 2 ** retry, MAX_BACKOFF_MS) * (0.8 + Math.random() * 0.4);
          const delayMs = Math.round(error instanceof LlmHttpError && error.retryAfterMs !== null ? error.retryAfterMs : backoff);
          logger.warn({ supervisorId, endpoint, retry: retry + 1, of: maxRetries, delayMs, err: errorText(error) }, 'model request failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
      }
    },
  };
}
