// A scripted stand-in for an LLM: spawns tasks, asks one question, and completes when everything is answered and done.

import { EventRefusedError } from '../domain/errors.js';
import { isTerminalState } from '../domain/supervisor-state.js';
import type { AgentDriver, SupervisorHandle } from './agent-driver.js';

export interface ScriptedDriverOptions {
  name?: string;
  tasks?: string[];
  question?: string;
  choices?: string[] | null;
}

export function createScriptedDriver(options: ScriptedDriverOptions = {}): AgentDriver {
  const tasks = options.tasks ?? ['collect the requirements', 'draft the implementation plan'];
  const question = options.question ?? 'Which approach should the plan take?';
  const choices = options.choices === undefined ? ['incremental', 'rewrite'] : options.choices;

  async function finishIfDone(supervisor: SupervisorHandle): Promise<void> {
    const context = supervisor.context();
    if (isTerminalState(supervisor.state()) || supervisor.state() === 'interrupted') return;
    if (context.pendingQuestions.length > 0 || context.tasks.some((task) => task.status === 'running')) return;
    const finished = context.completedTaskCount + context.failedTaskCount;
    if (finished === 0 && context.answeredQuestionCount === 0) return;
    try {
      if (context.phase !== 'review') await supervisor.send({ type: 'SET_PHASE', phase: 'review' });
      await supervisor.send({ type: 'COMPLETE', summary: `${context.completedTaskCount} task(s) done, ${context.failedTaskCount} failed, ${context.answeredQuestionCount} answer(s) used.` });
    } catch (error) {
      // Another event may have raced in (a new question, say); the next callback tries again.
      if (!(error instanceof EventRefusedError)) throw error;
    }
  }

  async function run(supervisor: SupervisorHandle): Promise<void> {
    await supervisor.send({ type: 'SET_ACTIVITY', activity: 'planning the work', progress: 5 });
    await supervisor.send({ type: 'SET_PHASE', phase: 'execution' });
    for (const description of tasks) await supervisor.send({ type: 'SPAWN_TASK', description });
    await supervisor.send({ type: 'ASK_QUESTION', question, ...(choices ? { choices } : {}) });
  }

  return {
    name: options.name ?? 'scripted',
    onStarted: run,
    onQuestionAnswered: (supervisor) => finishIfDone(supervisor),
    onTaskFinished: (supervisor) => finishIfDone(supervisor),
    onRestored: (supervisor) => finishIfDone(supervisor),
    // A fork of a checkpoint from before the script ran runs it; any other fork carries on from where it was.
    async onForked(supervisor, fork) {
      if (fork.started) await run(supervisor);
      else await finishIfDone(supervisor);
    },
  };
}
