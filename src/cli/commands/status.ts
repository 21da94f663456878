// `supervisor-runtime status [id]`: a table of every supervisor, or one supervisor in detail with its pending questions.

import { untilSignal } from './worker.js';
import type { SupervisorListResponse, SupervisorView } from '../../api/views.js';
import type { CliCommand } from '../command.js';
import { fields, table, truncate } from '../format.js';
import { CLIENT_HELP, clientOptions, daemonClientFor, type DaemonClient } from './http-client.js';

export function formatSupervisorTable(list: Pick<SupervisorListResponse, 'supervisors' | 'invalid'>): string {
  let text =
    list.supervisors.length === 0
      ? 'No supervisors yet: create one with `supervisor-runtime spawn <name>`.\n'
      : table(
          ['ID', 'NAME', 'STATE', 'PHASE', 'PROGRESS', 'QUESTIONS', 'OWNER', 'ACTIVITY'],
          list.supervisors.map((supervisor) => [
            supervisor.id,
            truncate(supervisor.name, 30),
            supervisor.state,
            truncate(supervisor.phase, 20),
            `${supervisor.progress}%`,
            String(supervisor.pendingQuestions.length),
            truncate(supervisor.owner ?? '-', 24),
            truncate(supervisor.currentActivity ?? '', 50),
          ]),
        );
  for (const invalid of list.invalid) {
    text += `! ${invalid.id}: stored state is invalid (${invalid.problems.join('; ')}); restore it with \`supervisor-runtime resume ${invalid.id}\`\n`;
  }
  return text;
}

/** Every supervisor the daemon lists, page after page (`pageSize` per page; the daemon's default and cap is 1,000). */
export async function allSupervisors(client: Pick<DaemonClient, 'get'>, pageSize?: number, options: { pendingQuestions?: boolean } = {}): Promise<SupervisorListResponse> {
  const all: SupervisorListResponse = { supervisors: [], invalid: [], next: null, total: 0 };
  let after: string | null = null;
  do {
    const query = [
      ...(options.pendingQuestions ? ['pendingQuestions=true'] : []),
      ...(pageSize ? [`limit=${pageSize}`] : []),
      ...(after ? [`after=${encodeURIComponent(after)}`] : []),
    ].join('&');
    const page: SupervisorListResponse = await client.get<SupervisorListResponse>(query ? `/supervisors?${query}` : '/supervisors');
    all.supervisors.push(...page.supervisors);
    all.invalid.push(...page.invalid);
    all.total = page.total;
    after = page.next;
  } while (after);
  return all;
}

export function formatSupervisorDetail(supervisor: SupervisorView): string {
  const restored =
    supervisor.restorationCount > 0
      ? `${supervisor.restorationCount} time(s), last ${supervisor.lastRestoredAt ?? '?'} from ${supervisor.restorationSource ?? '?'}`
      : 'never';
  let text = fields([
    ['Supervisor', supervisor.id],
    ['Name', supervisor.name],
    ['State', `${supervisor.state}${supervisor.live ? ' (running in the daemon)' : supervisor.owner ? ` (not running in this daemon; owner ${supervisor.owner})` : ' (not running in any daemon)'}`],
    ['Owner', supervisor.owner ? `${supervisor.owner} (epoch ${supervisor.epoch})` : 'none'],
    ['Phase', supervisor.phase],
    ['Progress', `${supervisor.progress}%`],
    ['Activity', supervisor.currentActivity],
    ['Error', supervisor.errorMessage],
    ['Driver', supervisor.driver],
    ['Tasks', supervisor.spawnedTaskIds.length > 0 ? supervisor.spawnedTaskIds.join(', ') : 'none'],
    ['Restored', restored],
    ['Heartbeat', supervisor.lastHeartbeat ?? 'none yet'],
    ['Checkpoint', `#${supervisor.checkpointSeq} (step ${supervisor.step})`],
    ['Created', supervisor.createdAt],
    ['Updated', supervisor.updatedAt],
  ]);
  if (supervisor.pendingQuestions.length === 0) return `${text}Pending questions: none\n`;
  text += `Pending questions (${supervisor.pendingQuestions.length}):\n`;
  for (const question of supervisor.pendingQuestions) {
    text += `  ${question.id}  ${question.question}\n`;
    if (question.choices) text += `    choices: ${question.choices.join(' | ')}\n`;
    if (question.context) text += `    context: ${question.context}\n`;
    text += `    asked ${question.askedAt}, delivered ${question.deliveryCount} time(s)\n`;
  }
  return `${text}Answer with \`supervisor-runtime answer ${supervisor.id} <question id> <answer>\`.\n`;
}

export const statusCommand: CliCommand = {
  name: 'status',
  summary: 'list supervisors (state, phase, progress, questions), or show one in detail',
  help: `Usage: supervisor-runtime status [id] [--json] [--watch [--every SECONDS]] [--url URL]

Without an id: one line per supervisor (id, name, state, phase, progress, pending questions, activity).
With an id: that supervisor in detail, with its pending questions.
  --json              print the daemon's JSON answer instead of a table
  --watch             keep looking (every 2 s, or --every SECONDS) and print again, with the time, whenever
                      it changes; stop with Ctrl-C. A daemon that stops answering is reported, and watched for.
  --every SECONDS     with --watch: how often to look (0.2 to 3600); without --watch it is refused
${CLIENT_HELP}`,
  options: { ...clientOptions, json: { type: 'boolean' }, watch: { type: 'boolean' }, every: { type: 'string' } },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length > 1) {
      io.err(`status takes at most one supervisor id (got ${positionals.length} arguments).\n\n${statusCommand.help}\n`);
      return 2;
    }
    if (typeof values.every === 'string' && !values.watch) {
      io.err(`--every sets how often --watch looks: add --watch (\`supervisor-runtime status${positionals[0] !== undefined ? ` ${positionals[0]}` : ''} --watch --every ${values.every}\`).\n\n${statusCommand.help}\n`);
      return 2;
    }
    const client = daemonClientFor(io, values);
    const [id] = positionals;
    const render = async (): Promise<string> => {
      if (id !== undefined) {
        const supervisor = await client.get<SupervisorView>(`/supervisors/${encodeURIComponent(id)}`);
        return values.json ? `${JSON.stringify(supervisor, null, 2)}\n` : formatSupervisorDetail(supervisor);
      }
      const list = await allSupervisors(client);
      return values.json ? `${JSON.stringify(list, null, 2)}\n` : formatSupervisorTable(list);
    };
    if (!values.watch) {
      io.out(await render());
      return 0;
    }
    const every = typeof values.every === 'string' ? values.every : '2';
    if (!/^\d+(\.\d+)?$/.test(every) || Number(every) < 0.2 || Number(every) > 3_600) {
      io.err(`--every must be a number of seconds from 0.2 to 3600 (got "${every}").\n\n${statusCommand.help}\n`);
      return 2;
    }
    const stop = untilSignal();
    let stopped = false;
    void stop.then(() => (stopped = true));
    let last = '';
    while (!stopped) {
      let text: string;
      try {
        text = await render();
      } catch (error) {
        // The daemon restarting is what one watches for: say so once, and keep looking.
        text = `${error instanceof Error ? error.message : String(error)}\n`;
      }
      if (text !== last) {
        io.out(`--- ${new Date().toISOString()}\n${text}`);
        last = text;
      }
      await Promise.race([stop, new Promise((resolve) => setTimeout(resolve, Number(every) * 1000))]);
    }
    return 0;
  },
};
