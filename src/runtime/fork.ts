// Forking: a new supervisor made from a checkpoint of another, to try again from that point. The fork starts with the
// source's state and conversation as they were at the checkpoint, and its open work becomes its own: each pending
// question is asked again under the fork (the fork's answers are its own), each running task is spawned again under a
// new task id (a worker runs it for the fork), and a notice at the end of its conversation tells its LLM what it is.
// The source is only read: nothing it does afterwards reaches the fork, nor the other way round.

import type { ConversationEntry } from '../domain/conversation.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { SpawnedTask } from '../domain/spawned-task.js';
import { supervisorMachine, type SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorContext, SupervisorEffect } from '../machines/supervisor-types.js';
import type { CheckpointRecord, ForkedTask, ForkOrigin } from '../persistence/supervisor-repository.js';

export type { ForkedTask };

/** What a fork is made from, and what it is called. */
export interface ForkInput {
  /** The checkpoint to fork from (default: the source's newest, the one its row points to). */
  checkpointSeq?: number;
  /** The fork's UUID; made up when left out. A caller's id is its idempotency key: a retry answers with the same fork. */
  id?: string;
  /** Default: the source's name with " (fork)". */
  name?: string;
  /** Agent driver (default: the source's, when this daemon has it; else the runtime's default). */
  driver?: string;
  /** Run it at once: START a fork of an initializing checkpoint, RESUME one of an interrupted checkpoint (default true). */
  start?: boolean;
}

/** The fork's first save point, planned from the validated checkpoint. */
export interface ForkPlan {
  snapshot: SupervisorSnapshot;
  /** Its questions asked, its tasks spawned and its notice appended, committed with its row. */
  effects: SupervisorEffect[];
  forkedFrom: ForkOrigin;
  contextMessage: string;
  tasks: ForkedTask[];
  questionIds: string[];
}

/** The notice a fork's LLM reads at the end of the history it was forked with. */
export function buildForkContextMessage(input: {
  sourceId: string;
  sourceName: string;
  checkpoint: Pick<CheckpointRecord, 'seq' | 'reason' | 'createdAt' | 'state'>;
  questions: readonly PendingQuestion[];
  tasks: readonly ForkedTask[];
}): string {
  const { checkpoint } = input;
  const lines = [
    `[fork] You are a fork of supervisor "${input.sourceName}" (${input.sourceId}), made from its checkpoint ${checkpoint.seq} ` +
      `(${checkpoint.reason}, ${checkpoint.createdAt}, state ${checkpoint.state}). The conversation above is its history up to that ` +
      'checkpoint; nothing that happened to it afterwards happened to you, and what you do from here does not reach it.',
  ];
  if (input.questions.length > 0) {
    lines.push(`Asked again, waiting for an answer to you: ${input.questions.map((question) => `${question.id} (${JSON.stringify(question.question)})`).join('; ')}.`);
  }
  if (input.tasks.length > 0) {
    lines.push(`Spawned again for you under new ids: ${input.tasks.map((task) => `${task.from} → ${task.to} (${task.description})`).join('; ')}. Their outcomes will come under the new ids.`);
  }
  lines.push('Carry on from there.');
  return lines.join('\n');
}

/**
 * The fork's state: the checkpoint's context under the fork's id and name, its tasks renamed, its questions delivered
 * once more, its restoration record and heartbeat cleared, its conversation the checkpoint's plus the notice.
 */
export function planFork(input: {
  sourceId: string;
  checkpoint: CheckpointRecord;
  /** The checkpoint's snapshot, migrated and validated (a terminal one is refused before this). */
  snapshot: SupervisorSnapshot;
  id: string;
  name: string;
  at: string;
  newTaskId: () => string;
}): ForkPlan {
  const source: SupervisorContext = input.snapshot.context;
  const tasks: ForkedTask[] = [];
  const renamed: SpawnedTask[] = source.tasks.map((task) => {
    const to = input.newTaskId();
    tasks.push({ from: task.id, to, description: task.description });
    return { ...task, id: to, status: 'running', progress: 0, result: null, error: null, spawnedAt: input.at, finishedAt: null };
  });
  const questions: PendingQuestion[] = source.pendingQuestions.map((question) => ({
    ...question,
    choices: question.choices === null ? null : [...question.choices],
    deliveryCount: 1,
    lastDeliveredAt: input.at,
  }));
  const copied = source.conversationLength;
  const contextMessage = buildForkContextMessage({ sourceId: input.sourceId, sourceName: source.name, checkpoint: input.checkpoint, questions, tasks });
  const notice: ConversationEntry = { seq: copied, role: 'system', content: contextMessage, at: input.at };
  const context: SupervisorContext = {
    ...source,
    supervisorId: input.id,
    name: input.name,
    tasks: renamed,
    pendingQuestions: questions,
    conversationLength: copied + 1,
    restorationCount: 0,
    lastRestoredAt: null,
    restorationSource: null,
    lastHeartbeatAt: null,
    createdAt: input.at,
  };
  const effects: SupervisorEffect[] = [
    { type: 'appendConversation', params: { entry: notice } },
    ...questions.map((question): SupervisorEffect => ({ type: 'deliverQuestion', params: { question, redelivery: false } })),
    ...renamed.map((task): SupervisorEffect => ({ type: 'startTask', params: { taskId: task.id, description: task.description } })),
  ];
  return {
    snapshot: supervisorMachine.resolveState({ value: String(input.snapshot.value), context }),
    effects,
    forkedFrom: { supervisorId: input.sourceId, checkpointSeq: input.checkpoint.seq, conversationLength: copied, tasks },
    contextMessage,
    tasks,
    questionIds: questions.map((question) => question.id),
  };
}
