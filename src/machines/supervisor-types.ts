// The supervisor machine's vocabulary: what it remembers, what it is told, and what it asks the runtime to do.

import type { ConversationEntry } from '../domain/conversation.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationSource } from '../domain/restoration.js';
import type { SpawnedTask } from '../domain/spawned-task.js';
import type { SupervisorState } from '../domain/supervisor-state.js';

/** Everything the machine remembers; plain JSON so a persisted snapshot round-trips through the database. */
export interface SupervisorContext {
  supervisorId: string;
  name: string;
  phase: string;
  currentActivity: string | null;
  /** 0–100. */
  progress: number;
  errorMessage: string | null;
  /**
   * Open work only: the tasks still running. A task leaves the context when it finishes (its row in supervisor_tasks
   * keeps the result), so a snapshot stays the same size however many tasks a supervisor has run.
   */
  tasks: SpawnedTask[];
  /** Questions still waiting for an answer; an answered question leaves (supervisor_questions keeps it). */
  pendingQuestions: PendingQuestion[];
  /** How many questions were answered, tasks completed and tasks failed: counters, not lists. */
  answeredQuestionCount: number;
  completedTaskCount: number;
  failedTaskCount: number;
  /** The history itself lives in the database; the machine only needs the next seq. */
  conversationLength: number;
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
  lastHeartbeatAt: string | null;
  interruptedFrom: SupervisorState | null;
  /**
   * The conversation's length when it was interrupted: the entries from this seq on were taken in while it was
   * interrupted (answers, messages, task outcomes), when a driver that acts only on a running supervisor did not act on
   * them. Set by INTERRUPT, null after RESUME; absent in snapshots written before it was recorded.
   */
  interruptedAtSeq?: number | null;
  /**
   * Held: made with `start: false` (a spawn, or a fork) and not begun since. A restore leaves a held supervisor as it is
   * (initializing, or interrupted for a fork of an interrupted checkpoint) instead of starting or resuming it, so it
   * waits for someone to START (or RESUME) it across restarts and takeovers. Set true in the creation snapshot only;
   * START makes it false, and so does a RESUME that leaves initializing behind (one that resumes into initializing still
   * waits for its START). Absent in a supervisor made to start, and in snapshots written before it was recorded: those
   * are begun by a restore.
   */
  held?: boolean;
  createdAt: string;
}

export interface SupervisorInput {
  supervisorId: string;
  name: string;
  /** Defaults to `planning`. */
  phase?: string;
  createdAt: string;
  /** Made with `start: false`: the context records it as held (see SupervisorContext.held). */
  held?: boolean;
}

/** The states a supervisor settles in after a change to its questions or tasks. */
export type WaitingState = 'waiting_for_user' | 'waiting_for_tasks' | 'working';

// Every event carries `at` because the machine never reads a clock: the caller's time is the only time.

export interface StartEvent {
  type: 'START';
  at: string;
}

export interface SetActivityEvent {
  type: 'SET_ACTIVITY';
  activity: string;
  progress?: number;
  at: string;
}

export interface SpawnTaskEvent {
  type: 'SPAWN_TASK';
  taskId: string;
  description: string;
  at: string;
}

export const TASK_EVENT_KINDS = ['progress', 'completed', 'failed'] as const;
export type TaskEventKind = (typeof TASK_EVENT_KINDS)[number];

export interface TaskEventEvent {
  type: 'TASK_EVENT';
  taskId: string;
  kind: TaskEventKind;
  progress?: number;
  result?: string;
  error?: string;
  at: string;
}

export interface AskQuestionEvent {
  type: 'ASK_QUESTION';
  questionId: string;
  question: string;
  choices?: string[];
  context?: string;
  at: string;
}

export interface AnswerEvent {
  type: 'ANSWER';
  questionId: string;
  answer: string;
  at: string;
}

/** Take back a pending question (it no longer needs an answer); it leaves the snapshot and its row says withdrawn. */
export interface WithdrawQuestionEvent {
  type: 'WITHDRAW_QUESTION';
  questionId: string;
  /** Why, for the conversation and the question's row. */
  reason?: string;
  at: string;
}

export interface SetPhaseEvent {
  type: 'SET_PHASE';
  phase: string;
  at: string;
}

export interface HeartbeatEvent {
  type: 'HEARTBEAT';
  at: string;
  activity?: string;
  progress?: number;
}

export interface CompleteEvent {
  type: 'COMPLETE';
  at: string;
  summary?: string;
}

export interface FailEvent {
  type: 'FAIL';
  error: string;
  at: string;
}

export interface InterruptEvent {
  type: 'INTERRUPT';
  reason: string;
  at: string;
}

export interface ResumeEvent {
  type: 'RESUME';
  at: string;
}

export interface RestoredEvent {
  type: 'RESTORED';
  at: string;
  source: RestorationSource;
  /** Written to the conversation so the agent knows it was restored and why. */
  contextMessage: string;
  /** Deliver every pending question again (the human may never have seen it). */
  redeliver: boolean;
  /** Pending questions whose answer is already recorded and about to be applied: not delivered again. */
  answerWaiting?: readonly string[];
}

/** Send a message to another supervisor: it goes out through the outbox with this step, once. */
export interface SendMessageEvent {
  type: 'SEND_MESSAGE';
  /** The receiving supervisor's id. */
  to: string;
  /** The sender's id for the message: a retried send under it is recognised, not sent twice. */
  messageId: string;
  body: string;
  at: string;
}

/** A message from another supervisor, applied by this supervisor's owner from the inbox (never sent from outside). */
export interface ReceiveMessageEvent {
  type: 'RECEIVE_MESSAGE';
  from: string;
  messageId: string;
  body: string;
  /** When the sender sent it. */
  sentAt: string;
  at: string;
}

export type SupervisorEvent =
  | StartEvent
  | SetActivityEvent
  | SpawnTaskEvent
  | TaskEventEvent
  | AskQuestionEvent
  | AnswerEvent
  | WithdrawQuestionEvent
  | SetPhaseEvent
  | HeartbeatEvent
  | CompleteEvent
  | FailEvent
  | InterruptEvent
  | ResumeEvent
  | RestoredEvent
  | SendMessageEvent
  | ReceiveMessageEvent;

export type SupervisorEventType = SupervisorEvent['type'];
export type SupervisorEventOf<T extends SupervisorEventType> = Extract<SupervisorEvent, { type: T }>;

export const SUPERVISOR_EVENT_TYPES = [
  'START',
  'SET_ACTIVITY',
  'SPAWN_TASK',
  'TASK_EVENT',
  'ASK_QUESTION',
  'ANSWER',
  'WITHDRAW_QUESTION',
  'SET_PHASE',
  'HEARTBEAT',
  'COMPLETE',
  'FAIL',
  'INTERRUPT',
  'RESUME',
  'RESTORED',
  'SEND_MESSAGE',
  'RECEIVE_MESSAGE',
] as const satisfies readonly SupervisorEventType[];

// Effects have the shape of xstate action objects so the machine can enqueue them unchanged.

export interface StartTaskEffect {
  type: 'startTask';
  params: { taskId: string; description: string };
}

export interface DeliverQuestionEffect {
  type: 'deliverQuestion';
  params: { question: PendingQuestion; redelivery: boolean };
}

export interface AnswerReceivedEffect {
  type: 'answerReceived';
  /** The question as it was pending, with its answer: what the save point writes to supervisor_questions. */
  params: { questionId: string; question: string; choices: string[] | null; context: string | null; askedAt: string; answer: string; answeredAt: string };
}

export interface TaskFinishedEffect {
  type: 'taskFinished';
  /** The task as it finished (it has left the context): what the save point writes to supervisor_tasks. */
  params: { taskId: string; status: 'completed' | 'failed'; task: SpawnedTask };
}

export interface TaskProgressedEffect {
  type: 'taskProgressed';
  /** The running task with its new progress: what the save point writes to its supervisor_tasks row. */
  params: { taskId: string; task: SpawnedTask };
}

/** A message this step sends: what the save point writes to supervisor_messages and the outbox. */
export interface SendMessageEffect {
  type: 'sendMessage';
  params: { to: string; messageId: string; body: string; sentAt: string };
}

/** A message this step took in: what the save point writes to supervisor_messages; the driver hears it. */
export interface MessageReceivedEffect {
  type: 'messageReceived';
  params: { from: string; messageId: string; body: string; sentAt: string; receivedAt: string };
}

export interface AppendConversationEffect {
  type: 'appendConversation';
  params: { entry: ConversationEntry };
}

/** Work the runtime does after it has committed the transition that implied it. */
/** A pending question was withdrawn: what the save point writes to supervisor_questions. */
export interface QuestionWithdrawnEffect {
  type: 'questionWithdrawn';
  params: { questionId: string; question: string; choices: string[] | null; context: string | null; askedAt: string; withdrawnAt: string; reason: string | null };
}

export type SupervisorEffect =
  | StartTaskEffect
  | DeliverQuestionEffect
  | AnswerReceivedEffect
  | TaskProgressedEffect
  | QuestionWithdrawnEffect
  | TaskFinishedEffect
  | AppendConversationEffect
  | SendMessageEffect
  | MessageReceivedEffect;

export type SupervisorEffectType = SupervisorEffect['type'];

export const SUPERVISOR_EFFECT_TYPES = [
  'startTask',
  'deliverQuestion',
  'answerReceived',
  'questionWithdrawn',
  'taskProgressed',
  'taskFinished',
  'appendConversation',
  'sendMessage',
  'messageReceived',
] as const satisfies readonly SupervisorEffectType[];

// Every effect type is listed above (the machine keeps only listed ones): a new effect left out fails to compile here.
const everyEffectListed: [Exclude<SupervisorEffectType, (typeof SUPERVISOR_EFFECT_TYPES)[number]>] extends [never] ? true : never = true;
void everyEffectListed;
