// The agent driver: what an orchestrator plugs in to drive a supervisor (the LLM side). It reacts to committed facts.

import type { ConversationEntry } from '../domain/conversation.js';
import type { RestorationSource } from '../domain/restoration.js';
import type { SupervisorState } from '../domain/supervisor-state.js';
import type {
  AskQuestionEvent,
  ReceiveMessageEvent,
  RestoredEvent,
  SendMessageEvent,
  SpawnTaskEvent,
  SupervisorContext,
  SupervisorEvent,
} from '../machines/supervisor-types.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type WithOptional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/** An event as callers send it: the runtime stamps `at` and makes up question and task ids when they are left out. */
export type SupervisorCommand =
  | WithOptional<AskQuestionEvent, 'at' | 'questionId'>
  | WithOptional<SpawnTaskEvent, 'at' | 'taskId'>
  | WithOptional<SendMessageEvent, 'at' | 'messageId'>
  | (DistributiveOmit<Exclude<SupervisorEvent, AskQuestionEvent | SpawnTaskEvent | SendMessageEvent | RestoredEvent | ReceiveMessageEvent>, 'at'> & { at?: string });

/** A task as it finished: its outcome is what the driver reacts to (it has left the supervisor's context). */
export interface FinishedTask {
  taskId: string;
  status: 'completed' | 'failed';
  description: string;
  result: string | null;
  error: string | null;
}

/** A RESUME that committed: where the supervisor was interrupted, why, and what it took in meanwhile. */
export interface ResumedSupervisor {
  /** The state it was interrupted in (it resumes there, or where its open work puts it). */
  interruptedFrom: SupervisorState | null;
  /** What the interruption recorded as its reason (its error message). */
  reason: string | null;
  /**
   * The stored conversation entries taken in while it was interrupted, in seq order: answers, messages from other
   * supervisors, task outcomes, withdrawals. Their callbacks ran while it was interrupted; a driver that acts only on a
   * running supervisor acts on them now. Read from the database (the snapshot records where the interruption began), so
   * it holds whatever arrived, whichever daemon took it in. Empty when nothing arrived.
   */
  arrived: ConversationEntry[];
}

/** What a driver sees of its supervisor and how it acts on it. */
export interface SupervisorHandle {
  readonly id: string;
  state(): SupervisorState;
  context(): Readonly<SupervisorContext>;
  /** The stored conversation in seq order (the snapshot keeps only its length): what an LLM driver hands its model. */
  conversation(options?: { fromSeq?: number; limit?: number }): Promise<ConversationEntry[]>;
  /** Applies the command through the save point; resolves after the commit. Rejects with EventRefusedError when refused. */
  send(command: SupervisorCommand): Promise<void>;
}

export interface AgentDriver {
  readonly name: string;
  /** After START committed. */
  onStarted?(supervisor: SupervisorHandle): void | Promise<void>;
  /** After an ANSWER committed. */
  onQuestionAnswered?(supervisor: SupervisorHandle, answer: { questionId: string; question: string; answer: string }): void | Promise<void>;
  /** After a task's completion or failure committed. */
  onTaskFinished?(supervisor: SupervisorHandle, task: FinishedTask): void | Promise<void>;
  /**
   * After a message from another supervisor was taken in (committed, in this supervisor's conversation). One taken in
   * before this supervisor started (initializing, or interrupted from there) is told after its START, after onStarted.
   */
  onMessage?(supervisor: SupervisorHandle, message: { from: string; messageId: string; body: string; sentAt: string }): void | Promise<void>;
  /**
   * After a RESUME committed that is not a restoration's or a fork's (a RESUME event, or the one a supervisor sends
   * itself once the database that interrupted it is back). A restoration that resumes the supervisor tells onRestored
   * instead, and a fork onForked: they run after its RESUME, with the same conversation.
   */
  onResumed?(supervisor: SupervisorHandle, resume: ResumedSupervisor): void | Promise<void>;
  /** After a restoration committed; `contextMessage` is what the LLM is told about the restart. */
  onRestored?(supervisor: SupervisorHandle, restoration: { source: RestorationSource; contextMessage: string }): void | Promise<void>;
  /**
   * After a fork of a checkpoint committed (and started): this supervisor is the fork; `contextMessage` is the notice at
   * the end of its conversation saying where it came from and which of its tasks and questions were issued again.
   * `started` says the fork was made from an initializing checkpoint and has just been STARTed: a fork gets this
   * instead of onStarted, once. A fork made with `start: false` hears nothing until it runs.
   */
  onForked?(supervisor: SupervisorHandle, fork: { sourceId: string; checkpointSeq: number; contextMessage: string; started: boolean }): void | Promise<void>;
}

/** The driver used when none is named: it never acts on its own; the API or an orchestrator sends every event. */
export const manualDriver: AgentDriver = { name: 'manual' };
