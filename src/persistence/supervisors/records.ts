// The shared shapes of supervisor persistence: the records it reads, the inputs it writes, and the stale-write error.

import type { Kysely } from 'kysely';
import type { ConversationEntry } from '../../domain/conversation.js';
import { SupervisorRuntimeError } from '../../domain/errors.js';
import type { PendingQuestion } from '../../domain/pending-question.js';
import type { RestorationSource } from '../../domain/restoration.js';
import type { TaskStatus } from '../../domain/spawned-task.js';
import type { SupervisorState } from '../../domain/supervisor-state.js';
import type { DatabaseSchema } from '../schema.js';

export type Executor = Kysely<DatabaseSchema>;

/** The detailed state of one supervisor, as the API and the CLI show it. */
export interface SupervisorDetailedState {
  id: string;
  name: string;
  state: SupervisorState;
  phase: string;
  currentActivity: string | null;
  progress: number;
  errorMessage: string | null;
  spawnedTaskIds: string[];
  pendingQuestions: PendingQuestion[];
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
  lastHeartbeat: string | null;
  owner: string | null;
  /** Fencing epoch: bumped each time a daemon claims the supervisor. */
  epoch: number;
  conversationRef: string | null;
  conversationLength: number;
  step: number;
  checkpointSeq: number;
  machineVersion: number | null;
  driver: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A task row the full save writes with the state that spawned or finished it. */
export interface TaskWrite {
  id: string;
  description: string;
  status: TaskStatus;
  progress: number;
  result: string | null;
  error: string | null;
  finishedAt: string | null;
}

/** A question row the full save writes: when it is asked (no answer yet), and again when it is answered. */
export interface QuestionWrite {
  id: string;
  question: string;
  choices: string[] | null;
  context: string | null;
  askedAt: string;
  answer: string | null;
  answeredAt: string | null;
  /** Set when the question was withdrawn instead of answered (then `answer` stays null). */
  withdrawnAt?: string | null;
  withdrawnReason?: string | null;
}

/** A question as supervisor_questions keeps it: pending until answered or withdrawn, and the first of those wins. */
export interface QuestionRecord extends QuestionWrite {
  supervisorId: string;
}

/** An outbound message written in the same statement as its save point, relayed later. */
export interface OutboxWrite {
  subject: string;
  payload: unknown;
  /** Stable effect id; also the transport's dedup id. */
  msgId: string;
}

export interface FullSaveInput {
  supervisorId: string;
  name: string;
  state: SupervisorState;
  phase: string;
  currentActivity: string | null;
  progress: number;
  errorMessage: string | null;
  spawnedTaskIds: string[];
  pendingQuestions: PendingQuestion[];
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
  lastHeartbeat: string | null;
  conversationLength: number;
  /** The persisted XState snapshot (plain JSON). */
  snapshot: unknown;
  machineVersion: number;
  /** Monotonic transition count; the write is refused when the row already holds this step or a later one. */
  step: number;
  /** Why this checkpoint exists: `task_spawned`, `question_asked`, `phase_changed`, … */
  reason: string;
  conversation?: ConversationEntry[];
  /** Questions asked or answered in this transition (answered ones have left `pendingQuestions` and the snapshot). */
  questions?: QuestionWrite[];
  /** Tasks spawned or finished in this transition (finished ones have left the snapshot). */
  tasks?: TaskWrite[];
  outbox?: OutboxWrite[];
  /** Messages sent or taken in by this transition. */
  messages?: MessageWrite[];
  /**
   * The writing daemon. Given, the write is fenced: refused with OwnershipLostError unless the row names this owner at
   * `epoch` (a new row is created with both). Left out (and `epoch` with it), it is a raw write fenced as an edit of
   * an unowned row at epoch 0: it lands only on a row that no daemon owns and none ever claimed, or on a new row.
   */
  owner?: string | null;
  /**
   * The owner's fencing epoch (with `owner`). With `owner` null it fences an edit of an unowned supervisor: refused
   * with OwnershipLostError unless the row is still nobody's at this epoch (a claim in between bumps it).
   */
  epoch?: number;
  /** The agent driver's name; kept when omitted. */
  driver?: string | null;
  /**
   * Only on a fork's first save point: the checkpoint it was made from. The statement records the lineage in
   * supervisor_forks and copies the source's conversation entries below `conversationLength` (the checkpoint's) into
   * the new supervisor's conversation, server-side, in the same transaction as the row.
   */
  forkedFrom?: ForkOrigin;
}

export interface FullSaveResult {
  checkpointSeq: number;
}

/** The row already holds a later step: an earlier state must never overwrite it. */
export class StaleWriteError extends SupervisorRuntimeError {
  override readonly name = 'StaleWriteError';
  constructor(supervisorId: string, step: number) {
    super(
      `Supervisor ${supervisorId}: refusing to write step ${step} because the stored row is already at that step or later. ` +
        'Another writer got there first; reload the supervisor (POST /supervisors/:id/resume) instead of retrying.',
      supervisorId,
    );
  }
}

/** A message row the full save writes: one this step sent, or one it took in. */
export interface MessageWrite {
  direction: 'sent' | 'received';
  /** The receiver of a sent message, the sender of a received one. */
  peerId: string;
  messageId: string;
  body: string;
  sentAt: string;
  receivedAt: string | null;
}

/** A message as stored on one side. */
export interface MessageRecord extends MessageWrite {
  supervisorId: string;
  createdAt: string;
}

/** A running task of the checkpoint a fork was made from, and the task spawned for the fork in its place. */
export interface ForkedTask {
  from: string;
  to: string;
  description: string;
}

/** Where a fork came from: a supervisor's checkpoint, and how much of its conversation the fork starts with. */
export interface ForkOrigin {
  supervisorId: string;
  checkpointSeq: number;
  conversationLength: number;
  tasks: ForkedTask[];
}

export interface CheckpointRecord {
  supervisorId: string;
  seq: number;
  step: number;
  reason: string;
  state: SupervisorState;
  snapshot: unknown;
  machineVersion: number;
  createdAt: string;
}

export interface TaskRecord {
  id: string;
  supervisorId: string;
  description: string;
  status: TaskStatus | 'pending';
  progress: number;
  result: string | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /**
   * The step of the save point that applied the outcome to the supervisor (its conversation entry, its counters, the
   * driver told); null while the task runs, or its worker recorded the outcome and the supervisor has not taken it in.
   */
  appliedStep: number | null;
}

export interface SpawnedTaskValidation {
  /** Ids that exist in supervisor_tasks for this supervisor, with their status. */
  existing: TaskRecord[];
  /** Ids the supervisor lists that have no task row (or belong to another supervisor). */
  missing: string[];
}

export interface PendingQuestionsSummary {
  supervisorId: string;
  name: string;
  state: SupervisorState;
  phase: string;
  pendingQuestions: PendingQuestion[];
  updatedAt: string;
}

export interface DetailedStateUpdate {
  state?: SupervisorState;
  currentActivity?: string | null;
  progress?: number;
  errorMessage?: string | null;
}

export interface RestorationMark {
  restorationCount: number;
  lastRestoredAt: string;
  restorationSource: RestorationSource;
}

export interface HeartbeatUpdate {
  /** Only write when the row names this owner at this epoch. */
  fence?: { owner: string; epoch: number };
  at?: Date | string;
  currentActivity?: string | null;
  progress?: number;
}

export interface ListSupervisorsOptions {
  pendingQuestionsOnly?: boolean;
  states?: SupervisorState[];
  /** Rows per page (default 1000). */
  limit?: number;
  /** The page after this supervisor (the `next` of the page before). */
  after?: string;
}
