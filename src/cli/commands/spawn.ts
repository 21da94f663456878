// `supervisor-runtime spawn <name> [--phase P] [--driver D]`: create a supervisor in the running daemon and start it.

import type { SupervisorView } from '../../api/views.js';
import type { CliCommand } from '../command.js';
import { CLIENT_HELP, clientOptions, daemonClientFor, IDEMPOTENCY_KEY_HELP, IDEMPOTENCY_KEY_OPTION, idempotencyKeyOf } from './http-client.js';

export const spawnCommand: CliCommand = {
  name: 'spawn',
  summary: 'create and start a supervisor in the running daemon',
  help: `Usage: supervisor-runtime spawn <name...> [--phase P] [--driver D] [--id UUID] [--idempotency-key K] [--json] [--url URL]

Creates a supervisor (saved before it starts) and sends it START. The name is the
remaining words, joined by spaces.
  --phase P           first phase (default: planning)
  --driver D          agent driver: manual (the default: you send every event), scripted, or
                      openai (an LLM; the daemon needs --llm-base-url and --llm-model)
  --id UUID           use this id instead of a new one
${IDEMPOTENCY_KEY_HELP}
  --json              print the daemon's JSON answer
${CLIENT_HELP}`,
  options: { ...clientOptions, phase: { type: 'string' }, driver: { type: 'string' }, id: { type: 'string' }, [IDEMPOTENCY_KEY_OPTION]: { type: 'string' }, json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const name = positionals.join(' ').trim();
    if (name === '') {
      io.err(`spawn needs a name.\n\n${spawnCommand.help}\n`);
      return 2;
    }
    const body: Record<string, string> = { name };
    for (const option of ['phase', 'driver', 'id'] as const) {
      const value = values[option];
      if (typeof value === 'string') body[option] = value;
    }
    const supervisor = await daemonClientFor(io, values).post<SupervisorView>('/supervisors', body, { idempotencyKey: idempotencyKeyOf(values) });
    io.out(
      values.json
        ? `${JSON.stringify(supervisor, null, 2)}\n`
        : `Spawned supervisor ${supervisor.id} (${supervisor.name}): state ${supervisor.state}, phase ${supervisor.phase}, driver ${supervisor.driver ?? 'default'}.\n`,
    );
    return 0;
  },
};
