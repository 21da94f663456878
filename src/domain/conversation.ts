// One entry of a supervisor's LLM conversation; entries are appended, never rewritten.

export const CONVERSATION_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type ConversationRole = (typeof CONVERSATION_ROLES)[number];

export interface ConversationEntry {
  /** Position in the conversation, starting at 0; (supervisor, seq) is unique. */
  seq: number;
  role: ConversationRole;
  content: string;
  at: string;
}
