// Pure context updates: for each accepted event, the next context and the effects it implies, computed from the context before it.

import type { ConversationRole } from '../domain/conversation.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { SpawnedTask } from '../domain/spawned-task.js';
import type { SupervisorState } from '../domain/supervisor-state.js';
import type {
  AnswerEvent,
  AskQuestionEvent,
  CompleteEvent,
  FailEvent,
  HeartbeatEvent,
  InterruptEvent,
  ReceiveMessageEvent,
  RestoredEvent,
  SendMessageEvent,
  ResumeEvent,
  SetActivityEvent,
  SetPhaseEvent,
  SpawnTaskEvent,
  StartEvent,
  SupervisorContext,
  SupervisorEffect,
  SupervisorEvent,
  SupervisorInput,
  TaskEventEvent,
  WithdrawQuestionEvent,
  WaitingState,
} from './supervisor-types.js';

export interface SupervisorUpdate {
  context: SupervisorContext;
  effects: SupervisorEffect[];
}

export function initialSupervisorContext(input: SupervisorInput): SupervisorContext {
  return {
    supervisorId: input.supervisorId,
    name: input.name,
    phase: input.phase ?? 'planning',
    currentActivity: null,
    progress: 0,
    errorMessage: null,
    tasks: [],
    pendingQuestions: [],
    answeredQuestionCount: 0,
    completedTaskCount: 0,
    failedTaskCount: 0,
    conversationLength: 0,
    restorationCount: 0,
    lastRestoredAt: null,
    restorationSource: null,
    lastHeartbeatAt: null,
    interruptedFrom: null,
    createdAt: input.createdAt,
    ...(input.held ? { held: true } : {}),
  };
}

/** Before START: `initializing`, or interrupted from it. A supervisor that started never goes back there. */
export function hasNotStarted(state: string, context: Pick<SupervisorContext, 'interruptedFrom'>): boolean {
  return state === 'initializing' || (state === 'interrupted' && context.interruptedFrom === 'initializing');
}

/** Made with start: false and not begun: only an initializing or interrupted supervisor is held (see SupervisorContext.held). */
export function isHeld(state: string, context: Pick<SupervisorContext, 'held'>): boolean {
  return context.held === true && (state === 'initializing' || state === 'interrupted');
}

/** The context with its hold released: the supervisor is begun. (False, not removed: an assignment merges into the context.) */
function begun(context: SupervisorContext): SupervisorContext {
  return context.held === true ? { ...context, held: false } : context;
}

/** Questions block everything; otherwise running tasks are waited on; otherwise the supervisor works. */
export function deriveWaitingState(context: Pick<SupervisorContext, 'pendingQuestions' | 'tasks'>): WaitingState {
  if (context.pendingQuestions.length > 0) return 'waiting_for_user';
  if (context.tasks.some((task) => task.status === 'running')) return 'waiting_for_tasks';
  return 'working';
}

/** A supervisor interrupted before it had anything in flight goes back where it was; otherwise to what is in flight. */
export function resumeTarget(context: SupervisorContext): SupervisorState {
  const from = context.interruptedFrom;
  const nothingInFlight = context.tasks.length === 0 && context.pendingQuestions.length === 0;
  if ((from === 'initializing' || from === 'idle') && nothingInFlight) return from;
  return deriveWaitingState(context);
}

// Effects get their own copies so a runtime that mutates one cannot reach into the snapshot.
function copyQuestion(question: PendingQuestion): PendingQuestion {
  return { ...question, choices: question.choices === null ? null : [...question.choices] };
}

function unchanged(context: SupervisorContext): SupervisorUpdate {
  return { context, effects: [] };
}

function withEffect(update: SupervisorUpdate, effect: SupervisorEffect): SupervisorUpdate {
  return { context: update.context, effects: [...update.effects, effect] };
}

/** The entry's seq is the length before the append, so seq and length can never drift apart. */
function withConversation(update: SupervisorUpdate, role: ConversationRole, content: string, at: string): SupervisorUpdate {
  const entry = { seq: update.context.conversationLength, role, content, at };
  return withEffect(
    { context: { ...update.context, conversationLength: entry.seq + 1 }, effects: update.effects },
    { type: 'appendConversation', params: { entry } },
  );
}

export function applyStart(context: SupervisorContext, event: StartEvent): SupervisorUpdate {
  return withConversation(
    unchanged(begun(context)),
    'system',
    `Supervisor "${context.name}" started in phase ${context.phase}.`,
    event.at,
  );
}

export function applySetActivity(context: SupervisorContext, event: SetActivityEvent): SupervisorUpdate {
  return unchanged({ ...context, currentActivity: event.activity, progress: event.progress ?? context.progress });
}

export function applySpawnTask(context: SupervisorContext, event: SpawnTaskEvent): SupervisorUpdate {
  const task: SpawnedTask = {
    id: event.taskId,
    description: event.description,
    status: 'running',
    progress: 0,
    result: null,
    error: null,
    spawnedAt: event.at,
    finishedAt: null,
  };
  const spawned = withEffect(unchanged({ ...context, tasks: [...context.tasks, task] }), {
    type: 'startTask',
    params: { taskId: task.id, description: task.description },
  });
  return withConversation(spawned, 'assistant', `Spawned task ${task.id}: ${task.description}`, event.at);
}

export function applyTaskEvent(context: SupervisorContext, event: TaskEventEvent): SupervisorUpdate {
  const current = context.tasks.find((task) => task.id === event.taskId);
  // Guards refuse unknown tasks; staying unchanged keeps this function total anyway.
  if (!current) return unchanged(context);
  if (event.kind === 'progress') {
    const progressed: SpawnedTask = { ...current, progress: event.progress ?? current.progress };
    const tasks = context.tasks.map((task) => (task.id === event.taskId ? progressed : task));
    // The task list is read from supervisor_tasks (GET …/tasks), so the new figure goes to the task's row too.
    return withEffect(unchanged({ ...context, tasks }), { type: 'taskProgressed', params: { taskId: event.taskId, task: progressed } });
  }
  const status = event.kind;
  const finishedTask: SpawnedTask = {
    ...current,
    status,
    // A completed task is done by definition, whatever it last reported.
    progress: status === 'completed' ? 100 : (event.progress ?? current.progress),
    result: status === 'completed' ? (event.result ?? null) : current.result,
    error: status === 'failed' ? (event.error ?? null) : current.error,
    finishedAt: event.at,
  };
  // The finished task leaves the context (open work only); its effect carries it to its row.
  const finished: SupervisorContext = {
    ...context,
    tasks: context.tasks.filter((task) => task.id !== event.taskId),
    completedTaskCount: context.completedTaskCount + (status === 'completed' ? 1 : 0),
    failedTaskCount: context.failedTaskCount + (status === 'failed' ? 1 : 0),
  };
  const outcome = status === 'completed' ? event.result : event.error;
  const content =
    outcome === undefined ? `Task ${event.taskId} ${status}.` : `Task ${event.taskId} ${status}: ${outcome}`;
  return withEffect(withConversation(unchanged(finished), 'tool', content, event.at), {
    type: 'taskFinished',
    params: { taskId: event.taskId, status, task: finishedTask },
  });
}

export function applyAskQuestion(context: SupervisorContext, event: AskQuestionEvent): SupervisorUpdate {
  const question: PendingQuestion = {
    id: event.questionId,
    question: event.question,
    choices: event.choices ? [...event.choices] : null,
    context: event.context ?? null,
    askedAt: event.at,
    deliveryCount: 1,
    lastDeliveredAt: event.at,
  };
  const asked = withEffect(unchanged({ ...context, pendingQuestions: [...context.pendingQuestions, question] }), {
    type: 'deliverQuestion',
    params: { question: copyQuestion(question), redelivery: false },
  });
  return withConversation(asked, 'assistant', event.question, event.at);
}

export function applyAnswer(context: SupervisorContext, event: AnswerEvent): SupervisorUpdate {
  const pending = context.pendingQuestions.find((question) => question.id === event.questionId);
  // Guards refuse unknown questions; staying unchanged keeps this function total anyway.
  if (!pending) return unchanged(context);
  const answered = withConversation(
    unchanged({
      ...context,
      pendingQuestions: context.pendingQuestions.filter((question) => question.id !== event.questionId),
      answeredQuestionCount: context.answeredQuestionCount + 1,
    }),
    'user',
    event.answer,
    event.at,
  );
  return withEffect(answered, { type: 'answerReceived', params: { ...settledQuestion(pending), answer: event.answer, answeredAt: event.at } });
}

/** A pending question as the effect that settles it carries it to its supervisor_questions row. */
function settledQuestion(pending: PendingQuestion): { questionId: string; question: string; choices: string[] | null; context: string | null; askedAt: string } {
  return { questionId: pending.id, question: pending.question, choices: pending.choices === null ? null : [...pending.choices], context: pending.context, askedAt: pending.askedAt };
}

export function applyWithdrawQuestion(context: SupervisorContext, event: WithdrawQuestionEvent): SupervisorUpdate {
  const pending = context.pendingQuestions.find((question) => question.id === event.questionId);
  if (!pending) return unchanged(context);
  const reason = event.reason?.trim() ? event.reason.trim() : null;
  const withdrawn = withConversation(
    unchanged({ ...context, pendingQuestions: context.pendingQuestions.filter((question) => question.id !== event.questionId) }),
    'system',
    `Question ${pending.id} was withdrawn${reason ? `: ${reason}` : ''}; it no longer needs an answer.`,
    event.at,
  );
  return withEffect(withdrawn, { type: 'questionWithdrawn', params: { ...settledQuestion(pending), withdrawnAt: event.at, reason } });
}

export function applySetPhase(context: SupervisorContext, event: SetPhaseEvent): SupervisorUpdate {
  return withConversation(
    unchanged({ ...context, phase: event.phase }),
    'system',
    `Phase changed from ${context.phase} to ${event.phase}.`,
    event.at,
  );
}

export function applyHeartbeat(context: SupervisorContext, event: HeartbeatEvent): SupervisorUpdate {
  return unchanged({
    ...context,
    lastHeartbeatAt: event.at,
    currentActivity: event.activity ?? context.currentActivity,
    progress: event.progress ?? context.progress,
  });
}

export function applyComplete(context: SupervisorContext, event: CompleteEvent): SupervisorUpdate {
  const content =
    event.summary === undefined
      ? `Supervisor "${context.name}" completed.`
      : `Supervisor "${context.name}" completed: ${event.summary}`;
  return withConversation(unchanged({ ...context, progress: 100 }), 'system', content, event.at);
}

export function applyFail(context: SupervisorContext, event: FailEvent): SupervisorUpdate {
  return unchanged({ ...context, errorMessage: event.error });
}

export function applyInterrupt(context: SupervisorContext, event: InterruptEvent, from: SupervisorState): SupervisorUpdate {
  return unchanged({ ...context, errorMessage: event.reason, interruptedFrom: from, interruptedAtSeq: context.conversationLength });
}

export function applyResume(context: SupervisorContext, _event: ResumeEvent): SupervisorUpdate {
  // Resumed into initializing, a held supervisor has not begun: it still waits for its START.
  const resumed = resumeTarget(context) === 'initializing' ? context : begun(context);
  return unchanged({ ...resumed, errorMessage: null, interruptedFrom: null, interruptedAtSeq: null });
}

export function applySendMessage(context: SupervisorContext, event: SendMessageEvent): SupervisorUpdate {
  const sent = withEffect(unchanged(context), { type: 'sendMessage', params: { to: event.to, messageId: event.messageId, body: event.body, sentAt: event.at } });
  return withConversation(sent, 'assistant', `Sent message ${event.messageId} to supervisor ${event.to}: ${event.body}`, event.at);
}

export function applyReceiveMessage(context: SupervisorContext, event: ReceiveMessageEvent): SupervisorUpdate {
  const received = withEffect(unchanged(context), {
    type: 'messageReceived',
    params: { from: event.from, messageId: event.messageId, body: event.body, sentAt: event.sentAt, receivedAt: event.at },
  });
  return withConversation(received, 'user', `Message ${event.messageId} from supervisor ${event.from}: ${event.body}`, event.at);
}

export function applyRestored(context: SupervisorContext, event: RestoredEvent): SupervisorUpdate {
  const waiting = new Set(event.answerWaiting ?? []);
  const delivered = (question: PendingQuestion) => event.redeliver && !waiting.has(question.id);
  const pendingQuestions = event.redeliver
    ? context.pendingQuestions.map((question) => (delivered(question) ? { ...question, deliveryCount: question.deliveryCount + 1, lastDeliveredAt: event.at } : question))
    : context.pendingQuestions;
  const restored = withConversation(
    unchanged({
      ...context,
      pendingQuestions,
      restorationCount: context.restorationCount + 1,
      lastRestoredAt: event.at,
      restorationSource: event.source,
    }),
    'system',
    event.contextMessage,
    event.at,
  );
  if (!event.redeliver) return restored;
  return pendingQuestions.filter(delivered).reduce<SupervisorUpdate>(
    (update, question) => withEffect(update, { type: 'deliverQuestion', params: { question: copyQuestion(question), redelivery: true } }),
    restored,
  );
}

/** Where a supervisor settles after an event whose target depends on what is still in flight once it is applied. */
export function settledStateAfter(context: SupervisorContext, event: SupervisorEvent): SupervisorState {
  switch (event.type) {
    case 'RESUME':
      return resumeTarget(context);
    case 'SPAWN_TASK':
      return deriveWaitingState(applySpawnTask(context, event).context);
    case 'TASK_EVENT':
      return deriveWaitingState(applyTaskEvent(context, event).context);
    case 'ANSWER':
      return deriveWaitingState(applyAnswer(context, event).context);
    case 'WITHDRAW_QUESTION':
      return deriveWaitingState(applyWithdrawQuestion(context, event).context);
    default:
      return deriveWaitingState(context);
  }
}
