// `supervisor-runtime answer <supervisorId> <questionId> <text...>`: answer a pending question; the first answer wins.

import type { SupervisorView } from '../../api/views.js';
import type { CliCommand } from '../command.js';
import { CLIENT_HELP, clientOptions, daemonClientFor } from './http-client.js';

export const answerCommand: CliCommand = {
  name: 'answer',
  summary: 'answer a pending question of a supervisor',
  help: `Usage: supervisor-runtime answer <supervisorId> <questionId> <text...> [--json] [--url URL]

Sends the answer (the remaining words, joined by spaces). The answer is saved before the
supervisor acts on it. A question has one answer: a second one is refused with the first.
  --json              print the daemon's JSON answer
${CLIENT_HELP}`,
  options: { ...clientOptions, json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId, questionId, ...words] = positionals;
    if (!supervisorId || !questionId || words.length === 0) {
      io.err(`answer needs a supervisor id, a question id and the answer text (see \`supervisor-runtime questions\`).\n\n${answerCommand.help}\n`);
      return 2;
    }
    const answer = words.join(' ');
    const supervisor = await daemonClientFor(io, values).post<SupervisorView>(
      `/supervisors/${encodeURIComponent(supervisorId)}/questions/${encodeURIComponent(questionId)}/answer`,
      { answer },
    );
    io.out(
      values.json
        ? `${JSON.stringify(supervisor, null, 2)}\n`
        : `Answered question ${questionId} of ${supervisor.name} (${supervisor.id}) with ${JSON.stringify(answer)}; it is now ${supervisor.state}.\n`,
    );
    return 0;
  },
};
