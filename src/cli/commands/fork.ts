// `supervisor-runtime fork <id> [--checkpoint N]`: make a new supervisor from a checkpoint of another, in the running daemon.

import type { ForkResponse } from '../../api/routes/forks.js';
import type { CliCommand } from '../command.js';
import { CLIENT_HELP, clientOptions, daemonClientFor, IDEMPOTENCY_KEY_HELP, IDEMPOTENCY_KEY_OPTION, idempotencyKeyOf } from './http-client.js';

export const forkCommand: CliCommand = {
  name: 'fork',
  summary: 'make a new supervisor from a checkpoint of another (try again from there)',
  help: `Usage: supervisor-runtime fork <supervisorId> [--checkpoint N] [--name NAME] [--driver D] [--no-start] [--id UUID] [--idempotency-key K] [--json] [--url URL]

Makes a new supervisor, run by the daemon at --url, from a stored checkpoint of another (the newest unless
--checkpoint names one; \`checkpoints <id>\` lists them): its state and its conversation up to that checkpoint,
then a notice saying where it came from. Its pending questions are asked again and its running tasks spawned
again under new task ids: answers and task outcomes of the fork are its own, and the source is not changed.
  --checkpoint N      the checkpoint's seq (default: the newest)
  --name NAME         the fork's name (default: the source's name with " (fork)")
  --driver D          agent driver (default: the source's)
  --no-start          leave a fork of an initializing or interrupted checkpoint as it is (default: START or RESUME it)
  --id UUID           use this id instead of a new one
${IDEMPOTENCY_KEY_HELP}
  --json              print the daemon's JSON answer
${CLIENT_HELP}`,
  options: {
    ...clientOptions,
    checkpoint: { type: 'string' },
    name: { type: 'string' },
    driver: { type: 'string' },
    'no-start': { type: 'boolean' },
    id: { type: 'string' },
    [IDEMPOTENCY_KEY_OPTION]: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: true,
  async run({ values, positionals }, io) {
    const [id, ...extra] = positionals;
    if (!id || extra.length > 0) {
      io.err(`Expected exactly one supervisor id.\n\n${forkCommand.help}\n`);
      return 2;
    }
    const body: Record<string, string | number | boolean> = {};
    if (typeof values.checkpoint === 'string') {
      if (!/^[1-9][0-9]{0,14}$/.test(values.checkpoint)) {
        io.err(`--checkpoint must be a checkpoint's seq, a positive whole number (got ${JSON.stringify(values.checkpoint)}); \`supervisor-runtime checkpoints ${id}\` lists them.\n`);
        return 2;
      }
      body.checkpointSeq = Number(values.checkpoint);
    }
    for (const option of ['name', 'driver', 'id'] as const) {
      const value = values[option];
      if (typeof value === 'string') body[option] = value;
    }
    if (values['no-start'] === true) body.start = false;
    const fork = await daemonClientFor(io, values).post<ForkResponse>(`/supervisors/${encodeURIComponent(id)}/fork`, body, { idempotencyKey: idempotencyKeyOf(values) });
    if (values.json) {
      io.out(`${JSON.stringify(fork, null, 2)}\n`);
      return 0;
    }
    const { supervisor, forkedFrom, tasks } = fork;
    const lines = [`Forked supervisor ${supervisor.id} (${supervisor.name}) from ${forkedFrom.supervisorId} at checkpoint ${forkedFrom.checkpointSeq}: state ${supervisor.state}, phase ${supervisor.phase}.`];
    for (const question of supervisor.pendingQuestions) lines.push(`  question ${question.id} asked again: ${question.question}`);
    for (const task of tasks) lines.push(`  task ${task.from} spawned again as ${task.to}: ${task.description}`);
    io.out(`${lines.join('\n')}\n`);
    return 0;
  },
};
