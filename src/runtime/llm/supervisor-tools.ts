// The supervisor's tools as the model sees them, and a tool call turned into the SupervisorCommand it stands for.

import { randomUUID } from 'node:crypto';
import type { SupervisorCommand } from '../agent-driver.js';
import type { ChatTool, ChatToolCall } from './chat-completions-client.js';

export const SUPERVISOR_TOOLS: readonly ChatTool[] = [
  {
    type: 'function',
    function: {
      name: 'spawn_task',
      description: 'Start a worker task. It runs on its own; its result (or failure) reaches you later in a message.',
      parameters: {
        type: 'object',
        properties: { description: { type: 'string', description: 'What the worker should do, in one or two sentences.' } },
        required: ['description'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'ask_question',
      description: 'Ask your human a question. Their answer reaches you later; until then you wait for it.',
      parameters: {
        type: 'object',
        properties: {
          question: { type: 'string' },
          choices: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'The only answers accepted, when the answer must be one of them.' },
          context: { type: 'string', description: 'Background the human needs to answer.' },
        },
        required: ['question'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'set_phase',
      description: 'Move your work to another phase (for example planning, execution, review).',
      parameters: { type: 'object', properties: { phase: { type: 'string' } }, required: ['phase'], additionalProperties: false },
    },
  },
  {
    type: 'function',
    function: {
      name: 'set_activity',
      description: 'Say what you are doing now and, optionally, how far along the whole work is.',
      parameters: {
        type: 'object',
        properties: { activity: { type: 'string' }, progress: { type: 'integer', minimum: 0, maximum: 100, description: 'Percent done.' } },
        required: ['activity'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'send_message',
      description: 'Send a message to another supervisor (by its id). It reaches that supervisor once, wherever it runs; its reply, if any, comes to you later as a message.',
      parameters: {
        type: 'object',
        properties: { to: { type: 'string', description: "The receiving supervisor's id (a UUID)." }, body: { type: 'string' } },
        required: ['to', 'body'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'complete',
      description: 'Finish your work with a summary. Only possible when no task is running and no question is open.',
      parameters: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'], additionalProperties: false },
    },
  },
  {
    type: 'function',
    function: {
      name: 'fail',
      description: 'Give up: the work cannot be done. Say why. This is final.',
      parameters: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'], additionalProperties: false },
    },
  },
];

/** A tool call the driver can apply, or why it cannot (sent back to the model as the tool result). */
export type ParsedToolCall = { ok: true; command: SupervisorCommand; describe: string } | { ok: false; error: string };

type Args = Record<string, unknown>;

function text(args: Args, field: string, required: true): string | { error: string };
function text(args: Args, field: string, required: false): string | undefined | { error: string };
function text(args: Args, field: string, required: boolean): string | undefined | { error: string } {
  const value = args[field];
  if (value === undefined || value === null) return required ? { error: `"${field}" is required` } : undefined;
  if (typeof value !== 'string') return { error: `"${field}" must be a string` };
  if (value.trim() === '') return required ? { error: `"${field}" must not be empty` } : undefined;
  return value.trim();
}

const failed = (value: unknown): value is { error: string } => typeof value === 'object' && value !== null && 'error' in value;

/** Checks the arguments' shape only; the machine's guards judge whether the event may happen now. */
export function parseToolCall(call: ChatToolCall): ParsedToolCall {
  let parsed: unknown;
  try {
    parsed = JSON.parse(call.function.arguments);
  } catch {
    return { ok: false, error: `the arguments of ${call.function.name} are not valid JSON: ${call.function.arguments.slice(0, 200)}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: `the arguments of ${call.function.name} must be a JSON object` };
  const args = parsed as Args;
  const invalid = (error: string): ParsedToolCall => ({ ok: false, error: `invalid arguments for ${call.function.name}: ${error}` });
  switch (call.function.name) {
    case 'spawn_task': {
      const description = text(args, 'description', true);
      if (failed(description)) return invalid(description.error);
      // The id is made here so the tool result can name it.
      const taskId = randomUUID();
      return { ok: true, command: { type: 'SPAWN_TASK', taskId, description }, describe: `task ${taskId} spawned` };
    }
    case 'ask_question': {
      const question = text(args, 'question', true);
      if (failed(question)) return invalid(question.error);
      const context = text(args, 'context', false);
      if (failed(context)) return invalid(context.error);
      const rawChoices = args.choices;
      if (rawChoices !== undefined && rawChoices !== null && (!Array.isArray(rawChoices) || rawChoices.some((choice) => typeof choice !== 'string' || choice.trim() === ''))) {
        return invalid('"choices" must be a list of non-empty strings');
      }
      const choices = Array.isArray(rawChoices) ? (rawChoices as string[]).map((choice) => choice.trim()) : undefined;
      const questionId = randomUUID();
      return {
        ok: true,
        command: { type: 'ASK_QUESTION', questionId, question, ...(choices ? { choices } : {}), ...(context ? { context } : {}) },
        describe: `question ${questionId} asked; the answer reaches you in a later turn`,
      };
    }
    case 'set_phase': {
      const phase = text(args, 'phase', true);
      if (failed(phase)) return invalid(phase.error);
      return { ok: true, command: { type: 'SET_PHASE', phase }, describe: `phase is now ${phase}` };
    }
    case 'set_activity': {
      const activity = text(args, 'activity', true);
      if (failed(activity)) return invalid(activity.error);
      const progress = args.progress;
      if (progress !== undefined && progress !== null && typeof progress !== 'number') return invalid('"progress" must be a whole number from 0 to 100');
      return {
        ok: true,
        command: { type: 'SET_ACTIVITY', activity, ...(typeof progress === 'number' ? { progress } : {}) },
        describe: 'activity recorded',
      };
    }
    case 'send_message': {
      const to = text(args, 'to', true);
      if (failed(to)) return invalid(to.error);
      const body = text(args, 'body', true);
      if (failed(body)) return invalid(body.error);
      const messageId = randomUUID();
      return { ok: true, command: { type: 'SEND_MESSAGE', to, body, messageId }, describe: `message ${messageId} sent to supervisor ${to}` };
    }
    case 'complete': {
      const summary = text(args, 'summary', false);
      if (failed(summary)) return invalid(summary.error);
      return { ok: true, command: { type: 'COMPLETE', ...(summary ? { summary } : {}) }, describe: 'completed; your work is done' };
    }
    case 'fail': {
      const error = text(args, 'error', true);
      if (failed(error)) return invalid(error.error);
      return { ok: true, command: { type: 'FAIL', error }, describe: 'failed; your work has ended' };
    }
    default:
      return { ok: false, error: `there is no tool named ${JSON.stringify(call.function.name)}; use one of ${SUPERVISOR_TOOLS.map((tool) => tool.function.name).join(', ')}` };
  }
}
