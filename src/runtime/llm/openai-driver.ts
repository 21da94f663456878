// An agent driver for any OpenAI-compatible chat-completions server: at each committed fact it hands the model the
// stored conversation and what happened, and turns the model's tool calls into supervisor events.

import { EventRefusedError, InvalidSupervisorDataError } from '../../domain/errors.js';
import { isTerminalState } from '../../domain/supervisor-state.js';
import type { AgentDriver, SupervisorHandle } from '../agent-driver.js';
import { silentLogger, type Logger } from '../logger.js';
import { createChatCompletionsClient, type ChatCompletionsClientOptions, type ChatMessage } from './chat-completions-client.js';
import { LlmRoundLimitError } from './llm-errors.js';
import { conversationMessages, entryText, systemPrompt, turnMessages } from './llm-messages.js';
import { parseToolCall, SUPERVISOR_TOOLS } from './supervisor-tools.js';

/** The name the daemon registers the driver under when the LLM settings are given. */
export const OPENAI_DRIVER_NAME = 'openai';

export interface OpenAiDriverOptions extends ChatCompletionsClientOptions {
  /** Driver name supervisors are spawned with (default `openai`). */
  name?: string;
  /** Requests to the model per callback, each answering the tool calls of the one before (default 8). */
  maxRounds?: number;
  /** Newest conversation entries sent (default 200); older ones are summarised as a count. */
  maxHistoryEntries?: number;
  /** Added to the system prompt: what every supervisor of this driver is for, house rules. */
  instructions?: string;
}

/**
 * The driver keeps no memory of its own: each callback reads the conversation the database holds, so a restored
 * supervisor (in this daemon or another) hands its model the same history. Callbacks of one supervisor run one at a
 * time, in the order they came; each one reads the state as it is when its turn comes.
 */
export function createOpenAiDriver(options: OpenAiDriverOptions): AgentDriver {
  const logger: Logger = options.logger ?? silentLogger;
  const client = createChatCompletionsClient({ ...options, logger });
  const maxRounds = options.maxRounds ?? 8;
  const maxHistory = options.maxHistoryEntries ?? 200;
  const turns = new Map<string, Promise<void>>();

  function stopped(supervisor: SupervisorHandle): boolean {
    const state = supervisor.state();
    return isTerminalState(state) || state === 'interrupted';
  }

  /** Applies one tool call and says how it went, for the model: refusals and bad arguments are its to correct. */
  async function apply(supervisor: SupervisorHandle, call: Parameters<typeof parseToolCall>[0]): Promise<string> {
    const parsed = parseToolCall(call);
    if (!parsed.ok) return JSON.stringify({ ok: false, error: parsed.error });
    try {
      await supervisor.send(parsed.command);
    } catch (error) {
      if (error instanceof EventRefusedError) return JSON.stringify({ ok: false, error: `refused: ${error.reason}`, state: supervisor.state() });
      if (error instanceof InvalidSupervisorDataError) return JSON.stringify({ ok: false, error: error.message, state: supervisor.state() });
      // Anything else (the save failed, the runtime stops, ownership moved) is not the model's to fix.
      throw error;
    }
    return JSON.stringify({ ok: true, result: parsed.describe, state: supervisor.state() });
  }

  async function converse(supervisor: SupervisorHandle, trigger: string | ((history: string[]) => string)): Promise<void> {
    if (stopped(supervisor)) return;
    const length = supervisor.context().conversationLength;
    const fromSeq = Math.max(0, length - maxHistory);
    const entries = await supervisor.conversation({ fromSeq, limit: maxHistory });
    const last = typeof trigger === 'string' ? trigger : trigger(entries.map((entry) => entry.content));
    const messages: ChatMessage[] = turnMessages(
      systemPrompt(supervisor.context(), supervisor.state(), options.instructions),
      conversationMessages(entries, fromSeq),
      last,
    );
    for (let round = 1; round <= maxRounds; round += 1) {
      const reply = await client.complete(messages, SUPERVISOR_TOOLS, supervisor.id);
      if (reply.toolCalls.length === 0) {
        logger.debug({ supervisorId: supervisor.id, round, finishReason: reply.finishReason }, 'model ended its turn');
        return;
      }
      messages.push({ role: 'assistant', content: reply.content, tool_calls: reply.toolCalls });
      for (const call of reply.toolCalls) {
        // Every call gets its result, even after the supervisor finished, so the transcript stays well formed.
        const result = stopped(supervisor) ? JSON.stringify({ ok: false, error: `not applied: the supervisor is ${supervisor.state()}` }) : await apply(supervisor, call);
        logger.debug({ supervisorId: supervisor.id, round, tool: call.function.name, result }, 'model tool call');
        messages.push({ role: 'tool', tool_call_id: call.id, content: result });
      }
      if (stopped(supervisor)) return;
    }
    throw new LlmRoundLimitError(client.endpoint, maxRounds, supervisor.id);
  }

  /** One turn at a time per supervisor; a failed turn does not stop the next one. */
  function turn(supervisor: SupervisorHandle, trigger: Parameters<typeof converse>[1]): Promise<void> {
    const previous = turns.get(supervisor.id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => converse(supervisor, trigger));
    const settled = next.catch(() => undefined);
    turns.set(supervisor.id, settled);
    void settled.then(() => {
      if (turns.get(supervisor.id) === settled) turns.delete(supervisor.id);
    });
    // The runtime logs a failed turn (it handles driver errors); the error says what to do.
    return next;
  }

  return {
    name: options.name ?? OPENAI_DRIVER_NAME,
    onStarted: (supervisor) => turn(supervisor, '[runtime] You have just been started. Plan your work and begin it with your tools.'),
    onQuestionAnswered: (supervisor, answer) =>
      turn(supervisor, `[runtime] Your question ${JSON.stringify(answer.question)} was answered: ${JSON.stringify(answer.answer)}. Carry on with your work.`),
    onTaskFinished: (supervisor, task) => {
      const outcome = task.status === 'completed' ? (task.result !== null ? `: ${task.result}` : '') : task.error !== null ? `: ${task.error}` : '';
      return turn(supervisor, `[runtime] Task ${task.taskId} (${task.description}) ${task.status}${outcome}. Carry on with your work.`);
    },
    onRestored: (supervisor, restoration) =>
      // The notice is in the stored conversation already (RESTORED appends it); it is repeated only if it fell outside.
      turn(supervisor, (history) =>
        history.includes(restoration.contextMessage)
          ? '[runtime] You were just restored: the restoration notice above says what happened. Carry on from where you were.'
          : `[runtime] ${restoration.contextMessage}\nCarry on from where you were.`,
      ),
    onMessage: (supervisor, message) =>
      turn(supervisor, `[runtime] Message ${message.messageId} from supervisor ${message.from}: ${JSON.stringify(message.body)}. Reply with send_message if it needs an answer, and carry on with your work.`),
    onResumed: (supervisor, resume) => {
      // The callbacks of what arrived meanwhile ran while it was interrupted and asked the model nothing: this turn is
      // theirs, one for all of them. A supervisor that resumes into initializing hears it all at its START instead.
      if (resume.arrived.length === 0 || supervisor.state() === 'initializing') return;
      const why = resume.reason ? ` (${resume.reason})` : '';
      const arrived = resume.arrived.map((entry) => `- ${entryText(entry)}`).join('\n');
      return turn(
        supervisor,
        `[runtime] You were interrupted${why} and are running again. While you were interrupted, this arrived and you have not acted on it yet:\n${arrived}\nCarry on with your work.`,
      );
    },
    onForked: (supervisor, fork) =>
      // The notice is the last entry of the conversation the fork was made with; repeated only if it fell outside.
      turn(supervisor, (history) =>
        (history.includes(fork.contextMessage) ? '[runtime] You were just forked: the fork notice above says from where.' : `[runtime] ${fork.contextMessage}`) +
        (fork.started ? ' You have just been started. Plan your work and begin it with your tools.' : ' Carry on from there.'),
      ),
  };
}
