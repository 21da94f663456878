// `supervisor-runtime questions`: every question a supervisor is waiting on a human to answer.

import type { SupervisorListResponse } from '../../api/views.js';
import type { CliCommand } from '../command.js';
import { table, truncate } from '../format.js';
import { CLIENT_HELP, clientOptions, daemonClientFor } from './http-client.js';
import { allSupervisors } from './status.js';

export function formatPendingQuestions(list: SupervisorListResponse): string {
  const rows = list.supervisors.flatMap((supervisor) =>
    supervisor.pendingQuestions.map((question) => [
      supervisor.id,
      truncate(supervisor.name, 24),
      question.id,
      truncate(question.question, 60),
      question.choices ? question.choices.join(' | ') : '(free text)',
    ]),
  );
  if (rows.length === 0) return 'No pending questions.\n';
  return `${table(['SUPERVISOR', 'NAME', 'QUESTION ID', 'QUESTION', 'CHOICES'], rows)}\nAnswer with \`supervisor-runtime answer <supervisor> <question id> <answer>\`.\n`;
}

export const questionsCommand: CliCommand = {
  name: 'questions',
  summary: 'list the questions supervisors are waiting on, across all supervisors',
  help: `Usage: supervisor-runtime questions [--json] [--url URL]

Lists every pending question: supervisor, question id, question and its choices.
  --json              print the daemon's JSON answer instead of a table
${CLIENT_HELP}`,
  options: { ...clientOptions, json: { type: 'boolean' } },
  async run({ values }, io) {
    const list = await allSupervisors(daemonClientFor(io, values), undefined, { pendingQuestions: true });
    io.out(values.json ? `${JSON.stringify(list, null, 2)}\n` : formatPendingQuestions(list));
    return 0;
  },
};
