// The restoration context message: what the LLM is told after a restart, built only from data it is given.

import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationSource, StateRecoveryAction, TaskResumption } from '../domain/restoration.js';
import type { SupervisorContext } from './supervisor-types.js';

export interface RestorationContextInput {
  context: SupervisorContext;
  state: string;
  source: RestorationSource;
  recoveryAction: StateRecoveryAction;
  checkpointSeq: number | null;
  /** When the supervisor was last known alive (last heartbeat or last save). */
  downSince: string | null;
  restoredAt: string;
  tasks: TaskResumption[];
  /** Pending questions delivered to the human again with this restoration; other open ones are listed as unchanged. */
  redelivered: PendingQuestion[];
  /** Pending questions whose answer is already recorded and reaches the supervisor next (not delivered again). */
  answerWaiting?: readonly string[];
  warnings: string[];
  /** The daemon that ran the supervisor before, and the one that runs it now (named in a reassignment notice). */
  owners?: { previous: string | null; current: string };
}

const SOURCE_TEXT: Record<RestorationSource, string> = {
  daemon_restart: 'the daemon that ran you stopped (crash or restart) and a new one restored you',
  manual: 'an operator asked for you to be resumed',
  reassignment: 'the daemon that ran you stopped holding its lease (it crashed, froze or shut down) and another daemon took you over',
};

const RECOVERY_TEXT: Record<StateRecoveryAction, string> = {
  restore: 'Your last saved state was valid and was restored as it was.',
  restore_from_checkpoint: 'Your last saved state was invalid, so you were restored from an earlier checkpoint: anything after it was lost; re-check what you were doing.',
  start_fresh: 'No usable saved state was found, so you start fresh: treat earlier work as unknown.',
};

/** Pending questions by what becomes of them: asked again, still with the human as they were, or answered already. */
function questionsOf(input: RestorationContextInput) {
  const waiting = new Set(input.answerWaiting ?? []);
  const again = new Set(input.redelivered.map((question) => question.id));
  const pending = input.context.pendingQuestions;
  return {
    redelivered: pending.filter((question) => !waiting.has(question.id) && again.has(question.id)),
    unchanged: pending.filter((question) => !waiting.has(question.id) && !again.has(question.id)),
    answered: pending.filter((question) => waiting.has(question.id)),
  };
}

function nextStep(input: RestorationContextInput): string {
  const running = input.tasks.filter((task) => task.action === 'resumed').length;
  if (input.state === 'completed' || input.state === 'failed') return `Nothing: you are ${input.state}.`;
  const { redelivered, unchanged, answered } = questionsOf(input);
  const open = redelivered.length + unchanged.length;
  if (open > 0) return `Wait for the human's answer to ${open} open question(s)${unchanged.length === 0 ? '; they were delivered again' : ''}.`;
  if (answered.length > 0) return `Take the ${answered.length} answer(s) recorded while you were down; they reach you next.`;
  if (running > 0) return `Wait for ${running} running task(s) to report.`;
  if (input.recoveryAction === 'start_fresh') return 'Start your work from the beginning.';
  return 'Continue your work from where you were.';
}

export function buildRestorationContextMessage(input: RestorationContextInput): string {
  const { context } = input;
  const lines = [
    `[Restoration notice] You were restored at ${input.restoredAt} because ${SOURCE_TEXT[input.source]}.` +
      (input.source === 'reassignment' && input.owners ? ` Previous daemon: ${input.owners.previous ?? 'none'}; you now run on daemon ${input.owners.current}.` : ''),
    input.downSince ? `You were last known alive at ${input.downSince}.` : 'When you were last alive is unknown.',
    RECOVERY_TEXT[input.recoveryAction] + (input.checkpointSeq !== null ? ` (checkpoint ${input.checkpointSeq})` : ''),
    `State: ${input.state}. Phase: ${context.phase}. Activity: ${context.currentActivity ?? 'none'}. Progress: ${context.progress}%.`,
  ];
  if (input.tasks.length > 0) {
    lines.push('Tasks:');
    for (const task of input.tasks) {
      const outcome =
        task.action === 'resumed'
          ? 'still running; keep waiting'
          : task.action === 'applied_completion'
            ? `completed while you were down${task.outcome ? `: ${task.outcome}` : ''}`
            : task.action === 'applied_failure'
              ? `failed while you were down${task.outcome ? `: ${task.outcome}` : ''}`
              : 'no longer exists and was dropped';
      lines.push(`- ${task.taskId} (${task.description || 'unknown task'}): ${outcome}`);
    }
  }
  const { redelivered, unchanged, answered } = questionsOf(input);
  const listed = (q: PendingQuestion) => `- ${q.id}: ${q.question}${q.choices ? ` [${q.choices.join(' / ')}]` : ''}`;
  if (redelivered.length > 0) {
    lines.push('Questions still open (delivered again to the human):');
    for (const q of redelivered) lines.push(listed(q));
  }
  if (unchanged.length > 0) {
    lines.push('Questions still open (the human has them already):');
    for (const q of unchanged) lines.push(listed(q));
  }
  if (answered.length > 0) {
    lines.push('Questions answered while you were down (the answer reaches you next):');
    for (const q of answered) lines.push(listed(q));
  }
  if (input.warnings.length > 0) lines.push(`Warnings: ${input.warnings.join('; ')}.`);
  lines.push(`Next: ${nextStep(input)}`);
  return lines.join('\n');
}
