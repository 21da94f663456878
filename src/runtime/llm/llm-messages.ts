// What the model reads: a system prompt with the supervisor's status, the stored conversation, and what just happened.

import type { ConversationEntry } from '../../domain/conversation.js';
import type { SupervisorState } from '../../domain/supervisor-state.js';
import type { SupervisorContext } from '../../machines/supervisor-types.js';
import type { ChatMessage } from './chat-completions-client.js';

export function systemPrompt(context: Readonly<SupervisorContext>, state: SupervisorState, instructions: string | undefined): string {
  const lines = [
    `You are the agent behind the supervisor "${context.name}" (id ${context.supervisorId}) in supervisor-runtime. Your name says what your work is.`,
    'You act only through your tools; each call is saved before it takes effect and its result tells you whether it was applied.',
    '- spawn_task starts a worker task; its result reaches you later. ask_question asks your human; the answer reaches you later.',
    '- set_phase and set_activity report where you are. complete ends the work (only with no task running and no question open); fail gives up.',
    '- send_message writes to another supervisor by its id; messages from other supervisors reach you as [human] turns that begin "Message <id> from supervisor <id>".',
    'When you have nothing to do until a task result or an answer arrives, reply briefly without calling a tool.',
    'Messages marked [runtime] are facts recorded by the runtime, [task result] are your workers\' outcomes, [human] are your human\'s answers.',
  ];
  if (instructions) lines.push('', instructions);
  lines.push('', `Status now: state ${state}, phase ${context.phase}, activity ${context.currentActivity ?? 'none'}, progress ${context.progress}%.`);
  lines.push(
    context.tasks.length === 0 ? 'Running tasks: none.' : `Running tasks:\n${context.tasks.map((task) => `- ${task.id}: ${task.description}`).join('\n')}`,
  );
  lines.push(
    context.pendingQuestions.length === 0
      ? 'Open questions: none.'
      : `Open questions:\n${context.pendingQuestions.map((q) => `- ${q.id}: ${q.question}${q.choices ? ` [${q.choices.join(' / ')}]` : ''}`).join('\n')}`,
  );
  return lines.join('\n');
}

// Stored roles as chat roles. Only the supervisor's own actions are the assistant's; everything else reaches the model
// as a user turn with a marker, because stored `tool` entries carry no tool_call_id and many chat templates refuse a
// system message after the first one.
const PREFIX: Record<ConversationEntry['role'], string | null> = { assistant: null, user: '[human] ', tool: '[task result] ', system: '[runtime] ' };

/** One stored entry as the model reads it: its text, with the marker of its role (none for the model's own). */
export function entryText(entry: ConversationEntry): string {
  return `${PREFIX[entry.role] ?? ''}${entry.content}`;
}

/**
 * The stored conversation as chat messages, consecutive turns of one role merged (some chat templates require
 * user and assistant to alternate), so the first message after the system prompt is a user one.
 */
export function conversationMessages(entries: readonly ConversationEntry[], omitted: number): Array<Extract<ChatMessage, { role: 'user' | 'assistant' }>> {
  const messages: Array<Extract<ChatMessage, { role: 'user' | 'assistant' }>> = [];
  const push = (role: 'user' | 'assistant', content: string) => {
    const last = messages.at(-1);
    if (last && last.role === role) last.content = `${last.content}\n${content}`;
    else messages.push({ role, content });
  };
  if (omitted > 0) push('user', `[runtime] ${omitted} earlier conversation entries are not shown.`);
  for (const entry of entries) push(PREFIX[entry.role] === null ? 'assistant' : 'user', entryText(entry));
  return messages;
}

/** The whole request: system prompt, conversation, then the event this turn is about (merged into a trailing user turn). */
export function turnMessages(system: string, history: ReturnType<typeof conversationMessages>, trigger: string): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: system }];
  const conversation = history.map((message) => ({ ...message }));
  const last = conversation.at(-1);
  if (last && last.role === 'user') last.content = `${last.content}\n\n${trigger}`;
  else conversation.push({ role: 'user', content: trigger });
  return [...messages, ...conversation];
}
