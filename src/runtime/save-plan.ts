// Turns one computed transition into the save point that makes it durable: which write, which checkpoint reason,
// and the conversation, task and outbox rows that commit with it.

import type { ConversationEntry } from '../domain/conversation.js';
import type { SpawnedTask } from '../domain/spawned-task.js';
import type { SupervisorState } from '../domain/supervisor-state.js';
import type { SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { SupervisorEffect, SupervisorEvent } from '../machines/supervisor-types.js';
import type { ForkOrigin, FullSaveInput, MessageWrite, OutboxWrite, QuestionWrite, TaskWrite } from '../persistence/supervisor-repository.js';
import type { QuestionMessage, StateChangeMessage, SupervisorMessage, TaskSpawnMessage } from '../transport/messages.js';
import { messagesSubject, questionsSubject, stateSubject, taskSpawnSubject } from '../transport/subjects.js';

export type SaveKind = 'full' | 'heartbeat';

/** Reasons recorded on checkpoints, by the event that caused them. */
const REASONS: Partial<Record<SupervisorEvent['type'], string>> = {
  START: 'started',
  SPAWN_TASK: 'task_spawned',
  ASK_QUESTION: 'question_asked',
  ANSWER: 'question_answered',
  WITHDRAW_QUESTION: 'question_withdrawn',
  SET_PHASE: 'phase_changed',
  COMPLETE: 'completed',
  FAIL: 'failed',
  INTERRUPT: 'interrupted',
  RESUME: 'resumed',
  RESTORED: 'restored',
  SEND_MESSAGE: 'message_sent',
  RECEIVE_MESSAGE: 'message_received',
};

/**
 * Full save on: task spawned, question asked or answered, phase changed, a task reported, a message sent or taken in, restoration, and every
 * change of top-level state. The rest (HEARTBEAT, SET_ACTIVITY) only touch heartbeat, activity and progress.
 */
export function saveKindFor(event: SupervisorEvent, before: SupervisorSnapshot, after: SupervisorSnapshot): { kind: SaveKind; reason: string } {
  const changed = before.value !== after.value;
  // A task's progress lives only in the snapshot (no column holds it), so a heartbeat save would lose it on restart.
  if (event.type === 'TASK_EVENT') return { kind: 'full', reason: `task_${event.kind}` };
  if (changed) return { kind: 'full', reason: REASONS[event.type] ?? `${String(before.value)}_to_${String(after.value)}` };
  const reason = REASONS[event.type];
  if (reason && event.type !== 'START') return { kind: 'full', reason };
  return { kind: 'heartbeat', reason: event.type === 'HEARTBEAT' ? 'heartbeat' : 'activity' };
}

/** The outbox row that hands a task to the workers on tasks.spawn (at spawn, and again when work must be redispatched). */
export function taskSpawnOutbox(
  supervisorId: string,
  task: Pick<SpawnedTask, 'id' | 'description' | 'spawnedAt'>,
  subjectPrefix: string,
  msgId: string,
): OutboxWrite {
  const message: TaskSpawnMessage = { v: 1, taskId: task.id, supervisorId, description: task.description, spawnedAt: task.spawnedAt };
  return { subject: taskSpawnSubject(subjectPrefix), payload: message, msgId };
}

export interface FullSaveContext {
  snapshot: SupervisorSnapshot;
  persisted: unknown;
  machineVersion: number;
  step: number;
  reason: string;
  effects: SupervisorEffect[];
  previousState: SupervisorState | null;
  subjectPrefix: string;
  driver: string | null;
  owner: string | null;
  /** The owner's fencing epoch. */
  epoch: number;
  /** The time of the event that caused this save. */
  at: string;
  /** A fork's creation: where it came from (see FullSaveInput.forkedFrom). */
  forkedFrom?: ForkOrigin;
}

/** The row columns a snapshot stands for: what a full save writes, and what a reply built from memory shows. */
export function stateColumns(snapshot: SupervisorSnapshot) {
  const { context } = snapshot;
  return {
    name: context.name,
    state: snapshot.value as SupervisorState,
    phase: context.phase,
    currentActivity: context.currentActivity,
    progress: context.progress,
    errorMessage: context.errorMessage,
    spawnedTaskIds: context.tasks.map((task) => task.id),
    pendingQuestions: context.pendingQuestions,
    restorationCount: context.restorationCount,
    lastRestoredAt: context.lastRestoredAt,
    restorationSource: context.restorationSource,
    lastHeartbeat: context.lastHeartbeatAt,
    conversationLength: context.conversationLength,
  };
}

export function fullSaveInput(plan: FullSaveContext): FullSaveInput {
  const { context } = plan.snapshot;
  const id = context.supervisorId;
  const state = plan.snapshot.value as SupervisorState;
  const conversation: ConversationEntry[] = [];
  const tasks: TaskWrite[] = [];
  const questions: QuestionWrite[] = [];
  const outbox: OutboxWrite[] = [];
  const messages: MessageWrite[] = [];
  const taskWrite = (task: SpawnedTask): TaskWrite => ({
    id: task.id,
    description: task.description,
    status: task.status,
    progress: task.progress,
    result: task.result,
    error: task.error,
    finishedAt: task.finishedAt,
  });
  // Stable effect ids (<supervisor>:<step>:<index>) make every message idempotent end to end.
  const msgId = () => `${id}:${plan.step}:${outbox.length}`;
  for (const effect of plan.effects) {
    switch (effect.type) {
      case 'appendConversation':
        conversation.push(effect.params.entry);
        break;
      case 'startTask': {
        const task = context.tasks.find((candidate) => candidate.id === effect.params.taskId);
        if (task) tasks.push(taskWrite(task));
        const spawnedAt = task?.spawnedAt ?? new Date(0).toISOString();
        outbox.push(taskSpawnOutbox(id, { id: effect.params.taskId, description: effect.params.description, spawnedAt }, plan.subjectPrefix, msgId()));
        break;
      }
      case 'taskProgressed':
      case 'taskFinished':
        // The effect carries the task to its row (a finished one has left the context; GET …/tasks reads rows).
        tasks.push(taskWrite(effect.params.task));
        break;
      case 'deliverQuestion': {
        const q = effect.params.question;
        if (!effect.params.redelivery) questions.push({ id: q.id, question: q.question, choices: q.choices, context: q.context, askedAt: q.askedAt, answer: null, answeredAt: null });
        const message: QuestionMessage = {
          v: 1,
          supervisorId: id,
          questionId: q.id,
          question: q.question,
          choices: q.choices,
          context: q.context,
          askedAt: q.askedAt,
          deliveryCount: q.deliveryCount,
          redelivery: effect.params.redelivery,
        };
        outbox.push({ subject: questionsSubject(id, plan.subjectPrefix), payload: message, msgId: msgId() });
        break;
      }
      case 'answerReceived': {
        const { questionId, answer, answeredAt, ...asked } = effect.params;
        questions.push({ id: questionId, ...asked, answer, answeredAt });
        break;
      }
      case 'sendMessage': {
        const { to, messageId, body, sentAt } = effect.params;
        messages.push({ direction: 'sent', peerId: to, messageId, body, sentAt, receivedAt: null });
        const message: SupervisorMessage = { v: 1, from: id, to, messageId, body, sentAt };
        outbox.push({ subject: messagesSubject(to, plan.subjectPrefix), payload: message, msgId: msgId() });
        break;
      }
      case 'messageReceived': {
        const { from, messageId, body, sentAt, receivedAt } = effect.params;
        messages.push({ direction: 'received', peerId: from, messageId, body, sentAt, receivedAt });
        break;
      }
      case 'questionWithdrawn': {
        const { questionId, withdrawnAt, reason, ...asked } = effect.params;
        questions.push({ id: questionId, ...asked, answer: null, answeredAt: null, withdrawnAt, withdrawnReason: reason });
        break;
      }
    }
  }
  if (plan.previousState !== state) {
    const message: StateChangeMessage = {
      v: 1,
      supervisorId: id,
      from: plan.previousState,
      to: state,
      phase: context.phase,
      at: plan.at,
    };
    outbox.push({ subject: stateSubject(id, plan.subjectPrefix), payload: message, msgId: msgId() });
  }
  return {
    supervisorId: id,
    ...stateColumns(plan.snapshot),
    snapshot: plan.persisted,
    machineVersion: plan.machineVersion,
    step: plan.step,
    reason: plan.reason,
    conversation,
    questions,
    tasks,
    outbox,
    ...(messages.length > 0 ? { messages } : {}),
    driver: plan.driver,
    owner: plan.owner,
    epoch: plan.epoch,
    ...(plan.forkedFrom ? { forkedFrom: plan.forkedFrom } : {}),
  };
}
