// `supervisor-runtime resume <id>`: run the restoration protocol for one supervisor and print its RestorationInfo.

import type { RestorationInfo } from '../../domain/restoration.js';
import type { CliCommand } from '../command.js';
import { formatRestorationInfo } from '../format-restoration.js';
import { CLIENT_HELP, clientOptions, daemonClientFor } from './http-client.js';

export const resumeCommand: CliCommand = {
  name: 'resume',
  summary: 'restore one supervisor through the restoration protocol and print what it did',
  help: `Usage: supervisor-runtime resume <supervisorId> [--start-fresh-if-missing] [--json] [--url URL]

Claims the supervisor for the daemon at --url (stopping its live actor there if it runs it), then loads,
validates (falling back to the newest valid checkpoint, or a fresh start), re-delivers its open questions,
reconciles its tasks, hands the LLM a restoration context message and resumes it. Prints the RestorationInfo.
Refused while another live daemon owns the supervisor (the error names it and its URL).
  --start-fresh-if-missing  no stored state under this id: start a fresh supervisor with it (logged as a warning)
  --json              print the RestorationInfo as JSON
${CLIENT_HELP}`,
  options: { ...clientOptions, json: { type: 'boolean' }, 'start-fresh-if-missing': { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [id, ...extra] = positionals;
    if (!id || extra.length > 0) {
      io.err(`Expected exactly one supervisor id.\n\n${resumeCommand.help}\n`);
      return 2;
    }
    const body = values['start-fresh-if-missing'] ? { startFreshIfMissing: true } : {};
    const info = await daemonClientFor(io, values).post<RestorationInfo>(`/supervisors/${encodeURIComponent(id)}/resume`, body);
    io.out(values.json ? `${JSON.stringify(info, null, 2)}\n` : formatRestorationInfo(info));
    return 0;
  },
};
