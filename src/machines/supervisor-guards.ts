// Pure checks on an event's data: null when the event may be applied, otherwise the reason it is refused.

import type {
  AnswerEvent,
  AskQuestionEvent,
  CompleteEvent,
  FailEvent,
  HeartbeatEvent,
  ReceiveMessageEvent,
  SendMessageEvent,
  SetActivityEvent,
  SetPhaseEvent,
  SpawnTaskEvent,
  SupervisorContext,
  SupervisorEvent,
  SupervisorEventOf,
  SupervisorEventType,
  TaskEventEvent,
  WithdrawQuestionEvent,
} from './supervisor-types.js';

/** A check never looks at the machine's state: which states accept an event is the machine config's job. */
export type SupervisorCheck<E extends SupervisorEvent = SupervisorEvent> = (
  context: SupervisorContext,
  event: E,
) => string | null;

const accept = (): null => null;

function checkProgress(progress: number | undefined): string | null {
  if (progress === undefined) return null;
  if (!Number.isFinite(progress) || progress < 0 || progress > 100) return `progress ${progress} is outside 0–100`;
  if (!Number.isInteger(progress)) return `progress ${progress} is not a whole number`;
  return null;
}

function quoted(values: readonly string[]): string {
  return values.map((value) => JSON.stringify(value)).join(', ');
}

export function checkSetActivity(_context: SupervisorContext, event: SetActivityEvent): string | null {
  return checkProgress(event.progress);
}

export function checkSpawnTask(context: SupervisorContext, event: SpawnTaskEvent): string | null {
  if (event.taskId === '') return 'taskId must not be empty';
  const existing = context.tasks.find((task) => task.id === event.taskId);
  if (existing) return `task ${event.taskId} was already spawned (it is ${existing.status})`;
  return null;
}

export function checkTaskEvent(context: SupervisorContext, event: TaskEventEvent): string | null {
  const task = context.tasks.find((candidate) => candidate.id === event.taskId);
  // Finished tasks leave the context: the runtime, which can read supervisor_tasks, says "already completed".
  if (!task) return `task ${event.taskId} is not running here (never spawned, or already finished)`;
  if (task.status !== 'running') return `task ${event.taskId} is not running (already ${task.status})`;
  if (event.kind === 'progress' && event.progress === undefined) {
    return `progress event for task ${event.taskId} carries no progress`;
  }
  return checkProgress(event.progress);
}

export function checkAskQuestion(context: SupervisorContext, event: AskQuestionEvent): string | null {
  if (event.questionId === '') return 'questionId must not be empty';
  if (event.question.trim() === '') return 'question must not be empty';
  if (context.pendingQuestions.some((question) => question.id === event.questionId)) {
    return `question ${event.questionId} is already pending`;
  }
  // A reused id of an answered question is refused by the runtime, which reads supervisor_questions.
  // An empty list of choices could never be answered and would block the supervisor for good.
  if (event.choices !== undefined && event.choices.length === 0) return 'choices, when given, must not be empty';
  return null;
}

export function checkAnswer(context: SupervisorContext, event: AnswerEvent): string | null {
  const pending = context.pendingQuestions.find((question) => question.id === event.questionId);
  // Answered questions leave the context: the runtime, which reads supervisor_questions, names the first answer.
  if (!pending) return `question ${event.questionId} is not pending (never asked, or already answered)`;
  if (pending.choices !== null && !pending.choices.includes(event.answer)) {
    return `answer ${JSON.stringify(event.answer)} is not one of the choices ${quoted(pending.choices)}`;
  }
  return null;
}

export function checkWithdrawQuestion(context: SupervisorContext, event: WithdrawQuestionEvent): string | null {
  if (!context.pendingQuestions.some((question) => question.id === event.questionId)) {
    return `question ${event.questionId} is not pending (never asked, already answered, or already withdrawn)`;
  }
  return null;
}

/** The refusal of a SET_PHASE to the phase the supervisor already has: the HTTP API answers it as a replay. */
export function phaseAlreadyReason(phase: string): string {
  return `phase is already ${phase}`;
}

export function checkSetPhase(context: SupervisorContext, event: SetPhaseEvent): string | null {
  if (event.phase.trim() === '') return 'phase must not be empty';
  if (event.phase === context.phase) return phaseAlreadyReason(event.phase);
  return null;
}

export function checkHeartbeat(_context: SupervisorContext, event: HeartbeatEvent): string | null {
  return checkProgress(event.progress);
}

export function checkComplete(context: SupervisorContext, _event: CompleteEvent): string | null {
  const pending = context.pendingQuestions.map((question) => question.id);
  if (pending.length > 0) return `cannot complete while questions are pending (${pending.join(', ')})`;
  const running = context.tasks.filter((task) => task.status === 'running').map((task) => task.id);
  if (running.length > 0) return `cannot complete while tasks are running (${running.join(', ')})`;
  return null;
}

export function checkFail(_context: SupervisorContext, event: FailEvent): string | null {
  if (event.error.trim() === '') return 'error must not be empty';
  return null;
}

/** One check per event type; events whose data cannot be wrong accept unconditionally. */
/**
 * The longest message body a supervisor sends, in UTF-8 bytes (it is stored in both conversations and travels on NATS):
 * 16 KiB, so that any such body, JSON-escaped as ordinary text is, fits the HTTP API's 64 KiB request limit.
 */
export const MAX_MESSAGE_BODY = 16_384;

/** UTF-8 length without encoding (the machine runs anywhere, so no Buffer); a lone surrogate counts as its 3-byte U+FFFD. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

const bodyTooLong = (body: string): string | null => {
  const bytes = utf8Length(body);
  return bytes > MAX_MESSAGE_BODY ? `body must be at most ${MAX_MESSAGE_BODY} bytes of UTF-8 (got ${bytes})` : null;
};

export function checkSendMessage(context: SupervisorContext, event: SendMessageEvent): string | null {
  if (event.messageId === '') return 'messageId must not be empty';
  if (event.to === context.supervisorId) return 'a supervisor cannot send a message to itself';
  if (event.body.trim() === '') return 'body must not be empty';
  return bodyTooLong(event.body);
}

export function checkReceiveMessage(context: SupervisorContext, event: ReceiveMessageEvent): string | null {
  if (event.messageId === '') return 'messageId must not be empty';
  if (event.from === context.supervisorId) return 'a supervisor cannot receive a message from itself';
  return bodyTooLong(event.body);
}

export const SUPERVISOR_CHECKS: { readonly [T in SupervisorEventType]: SupervisorCheck<SupervisorEventOf<T>> } = {
  START: accept,
  SET_ACTIVITY: checkSetActivity,
  SPAWN_TASK: checkSpawnTask,
  TASK_EVENT: checkTaskEvent,
  ASK_QUESTION: checkAskQuestion,
  ANSWER: checkAnswer,
  WITHDRAW_QUESTION: checkWithdrawQuestion,
  SET_PHASE: checkSetPhase,
  HEARTBEAT: checkHeartbeat,
  COMPLETE: checkComplete,
  FAIL: checkFail,
  INTERRUPT: accept,
  RESUME: accept,
  RESTORED: accept,
  SEND_MESSAGE: checkSendMessage,
  RECEIVE_MESSAGE: checkReceiveMessage,
};

export function checkEvent(context: SupervisorContext, event: SupervisorEvent): string | null {
  const check = SUPERVISOR_CHECKS[event.type] as SupervisorCheck;
  return check(context, event);
}
