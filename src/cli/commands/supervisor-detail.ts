// Client commands on one supervisor: ask and withdraw questions, send any event, and read its tasks, checkpoints and
// conversation. Each prints a short sentence or a table, or with --json the daemon's JSON answer.

import type { CheckpointListResponse, QuestionAskedResponse, SupervisorView } from '../../api/views.js';
import type { ConversationEntry } from '../../domain/conversation.js';
import type { TaskRecord } from '../../persistence/supervisor-repository.js';
import type { CliCommand, CliIo } from '../command.js';
import { table, truncate } from '../format.js';
import { CLIENT_HELP, clientOptions, daemonClientFor, IDEMPOTENCY_KEY_HELP, IDEMPOTENCY_KEY_OPTION, idempotencyKeyOf } from './http-client.js';

const JSON_HELP = '  --json              print the daemon\'s JSON answer';
const jsonOption = { json: { type: 'boolean' } } as const;
const path = (id: string) => `/supervisors/${encodeURIComponent(id)}`;

function usageError(io: CliIo, command: CliCommand, problem: string): number {
  io.err(`${problem}\n\n${command.help}\n`);
  return 2;
}

function print(io: CliIo, values: Record<string, unknown>, json: unknown, text: string): void {
  io.out(values.json ? `${JSON.stringify(json, null, 2)}\n` : text);
}

export const askCommand: CliCommand = {
  name: 'ask',
  summary: "ask a supervisor's human a question",
  help: `Usage: supervisor-runtime ask <supervisorId> <question...> [--choice TEXT]... [--context TEXT] [--id ID] [--idempotency-key K] [--json] [--url URL]

Asks the question (the remaining words) and prints its id; the supervisor waits for the answer.
  --choice TEXT       an allowed answer; repeat for each (without any, the answer is free text)
  --context TEXT      what the human needs to know to answer
  --id ID             your id for the question: a retry with the same id and question asks it once
${IDEMPOTENCY_KEY_HELP}
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption, choice: { type: 'string', multiple: true }, context: { type: 'string' }, id: { type: 'string' }, [IDEMPOTENCY_KEY_OPTION]: { type: 'string' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId, ...words] = positionals;
    if (!supervisorId || words.length === 0) return usageError(io, askCommand, 'ask needs a supervisor id and the question.');
    const choices = Array.isArray(values.choice) ? values.choice : [];
    const body = {
      question: words.join(' '),
      ...(choices.length > 0 ? { choices } : {}),
      ...(typeof values.context === 'string' ? { context: values.context } : {}),
      ...(typeof values.id === 'string' ? { questionId: values.id } : {}),
    };
    const asked = await daemonClientFor(io, values).post<QuestionAskedResponse>(`${path(supervisorId)}/questions`, body, { idempotencyKey: idempotencyKeyOf(values) });
    const how = choices.length > 0 ? `one of ${choices.map((choice) => JSON.stringify(choice)).join(', ')}` : 'any text';
    print(
      io,
      values,
      asked,
      `Asked ${asked.supervisor.name} (${asked.supervisor.id}) question ${asked.questionId}; it is now ${asked.supervisor.state}.\n` +
        `Answer with \`supervisor-runtime answer ${asked.supervisor.id} ${asked.questionId} <${how}>\`.\n`,
    );
    return 0;
  },
};

export const withdrawCommand: CliCommand = {
  name: 'withdraw',
  summary: 'withdraw a pending question (it no longer needs an answer)',
  help: `Usage: supervisor-runtime withdraw <supervisorId> <questionId> [reason...] [--json] [--url URL]

Takes the question back; an answer that arrives later is refused.
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId, questionId, ...words] = positionals;
    if (!supervisorId || !questionId) return usageError(io, withdrawCommand, 'withdraw needs a supervisor id and a question id.');
    const supervisor = await daemonClientFor(io, values).post<SupervisorView>(
      `${path(supervisorId)}/questions/${encodeURIComponent(questionId)}/withdraw`,
      words.length > 0 ? { reason: words.join(' ') } : {},
    );
    print(io, values, supervisor, `Withdrew question ${questionId} of ${supervisor.name} (${supervisor.id}); it is now ${supervisor.state}.\n`);
    return 0;
  },
};

export const eventCommand: CliCommand = {
  name: 'event',
  summary: 'send any machine event to a supervisor (SET_PHASE, COMPLETE, FAIL, INTERRUPT, …)',
  help: `Usage: supervisor-runtime event <supervisorId> <TYPE> [fields-as-JSON] [--json] [--url URL]

Sends one event; its fields come as a JSON object, for example
  supervisor-runtime event <id> SET_PHASE '{"phase":"implementation"}'
  supervisor-runtime event <id> COMPLETE '{"summary":"done"}'
  supervisor-runtime event <id> INTERRUPT '{"reason":"maintenance"}'
The README lists every event and its fields. It prints the state after the save point committed.
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId, type, fieldsText, ...extra] = positionals;
    if (!supervisorId || !type) return usageError(io, eventCommand, 'event needs a supervisor id and an event type.');
    if (extra.length > 0) return usageError(io, eventCommand, 'event takes its fields as one JSON object: quote it as one argument.');
    let fields: Record<string, unknown> = {};
    if (fieldsText !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(fieldsText);
      } catch (error) {
        return usageError(io, eventCommand, `The fields are not JSON (${(error as Error).message}): pass an object such as '{"phase":"review"}'.`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return usageError(io, eventCommand, "The fields must be a JSON object, such as '{\"phase\":\"review\"}'.");
      fields = parsed as Record<string, unknown>;
    }
    const supervisor = await daemonClientFor(io, values).post<SupervisorView>(`${path(supervisorId)}/events`, { ...fields, type: type.toUpperCase() });
    print(io, values, supervisor, `${type.toUpperCase()} applied to ${supervisor.name} (${supervisor.id}): it is now ${supervisor.state}, phase ${supervisor.phase}, step ${supervisor.step}.\n`);
    return 0;
  },
};

export function formatTasks(tasks: readonly TaskRecord[]): string {
  if (tasks.length === 0) return 'No tasks.\n';
  return table(
    ['TASK', 'STATUS', 'PROGRESS', 'DESCRIPTION', 'RESULT / ERROR'],
    tasks.map((task) => [task.id, task.status, `${task.progress}%`, truncate(task.description, 40), truncate(task.result ?? task.error ?? '', 40)]),
  );
}

export const tasksCommand: CliCommand = {
  name: 'tasks',
  summary: 'list the tasks a supervisor spawned, with status, progress and result',
  help: `Usage: supervisor-runtime tasks <supervisorId> [--json] [--url URL]

Every task the supervisor spawned, running and finished.
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId] = positionals;
    if (!supervisorId || positionals.length > 1) return usageError(io, tasksCommand, 'tasks needs one supervisor id.');
    const answer = await daemonClientFor(io, values).get<{ tasks: TaskRecord[] }>(`${path(supervisorId)}/tasks`);
    print(io, values, answer, formatTasks(answer.tasks));
    return 0;
  },
};

export const checkpointsCommand: CliCommand = {
  name: 'checkpoints',
  summary: "list a supervisor's checkpoints, newest first",
  help: `Usage: supervisor-runtime checkpoints <supervisorId> [--limit N] [--json] [--url URL]

The save points kept for the supervisor: sequence, step, why it was taken, the state, when.
  --limit N           how many (default 20)
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption, limit: { type: 'string' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId] = positionals;
    if (!supervisorId || positionals.length > 1) return usageError(io, checkpointsCommand, 'checkpoints needs one supervisor id.');
    const limit = typeof values.limit === 'string' ? values.limit : '20';
    if (!/^[1-9][0-9]{0,3}$/.test(limit)) return usageError(io, checkpointsCommand, `--limit must be a whole number from 1 to 9999 (got "${limit}").`);
    const answer = await daemonClientFor(io, values).get<CheckpointListResponse>(`${path(supervisorId)}/checkpoints?limit=${limit}`);
    const text =
      answer.checkpoints.length === 0
        ? 'No checkpoints.\n'
        : table(
            ['SEQ', 'STEP', 'REASON', 'STATE', 'AT'],
            answer.checkpoints.map((checkpoint) => [String(checkpoint.seq), String(checkpoint.step), checkpoint.reason, checkpoint.state, checkpoint.createdAt]),
          );
    print(io, values, answer, text);
    return 0;
  },
};

/** Entries per request of `conversation` (the daemon answers at most 10 000). */
const CONVERSATION_PAGE = 1000;

export const conversationCommand: CliCommand = {
  name: 'conversation',
  summary: "print a supervisor's conversation",
  help: `Usage: supervisor-runtime conversation <supervisorId> [--json] [--url URL]

The conversation in order: who said what, and when (restoration context messages included).
${JSON_HELP}
${CLIENT_HELP}`,
  options: { ...clientOptions, ...jsonOption },
  positionals: true,
  async run({ values, positionals }, io) {
    const [supervisorId] = positionals;
    if (!supervisorId || positionals.length > 1) return usageError(io, conversationCommand, 'conversation needs one supervisor id.');
    // The daemon answers a page at a time: read on from the last seq until a page comes back short.
    const client = daemonClientFor(io, values);
    const entries: ConversationEntry[] = [];
    for (let fromSeq = 0; ; ) {
      const page = await client.get<{ entries: ConversationEntry[] }>(`${path(supervisorId)}/conversation?fromSeq=${fromSeq}&limit=${CONVERSATION_PAGE}`);
      entries.push(...page.entries);
      const last = page.entries.at(-1);
      if (page.entries.length < CONVERSATION_PAGE || last === undefined) break;
      fromSeq = last.seq + 1;
    }
    const answer = { entries };
    const text = answer.entries.length === 0 ? 'No conversation yet.\n' : answer.entries.map((entry) => `#${entry.seq} ${entry.at} ${entry.role}: ${entry.content}\n`).join('');
    print(io, values, answer, text);
    return 0;
  },
};
