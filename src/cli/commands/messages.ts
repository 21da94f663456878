// `supervisor-runtime message <from> <to> <text…>` and `messages <id>`: send a message between supervisors, and list them.

import type { MessageSentResponse } from '../../api/routes/messages.js';
import type { MessageRecord } from '../../persistence/supervisor-repository.js';
import type { CliCommand } from '../command.js';
import { table, truncate } from '../format.js';
import { CLIENT_HELP, clientOptions, daemonClientFor, IDEMPOTENCY_KEY_HELP, IDEMPOTENCY_KEY_OPTION, idempotencyKeyOf } from './http-client.js';

export const messageCommand: CliCommand = {
  name: 'message',
  summary: 'send a message from one supervisor to another',
  help: `Usage: supervisor-runtime message <fromSupervisorId> <toSupervisorId> <text...> [--id ID] [--idempotency-key K] [--json] [--url URL]

Sends the text (the remaining words) from the first supervisor, which the daemon at --url runs, to the second,
wherever it runs. It is in the sender's conversation once this prints, and the receiver takes it in once.
  --id ID             your id for the message: a retry with the same id and text sends it once
${IDEMPOTENCY_KEY_HELP}
  --json              print the daemon's JSON answer
${CLIENT_HELP}`,
  options: { ...clientOptions, id: { type: 'string' }, [IDEMPOTENCY_KEY_OPTION]: { type: 'string' }, json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [from, to, ...words] = positionals;
    const text = words.join(' ').trim();
    if (!from || !to || text === '') {
      io.err(`message needs the sender's id, the receiver's id and the text.\n\n${messageCommand.help}\n`);
      return 2;
    }
    const body: Record<string, string> = { to, body: text };
    if (typeof values.id === 'string') body.messageId = values.id;
    const sent = await daemonClientFor(io, values).post<MessageSentResponse>(`/supervisors/${encodeURIComponent(from)}/messages`, body, { idempotencyKey: idempotencyKeyOf(values) });
    io.out(values.json ? `${JSON.stringify(sent, null, 2)}\n` : `Sent message ${sent.messageId} from ${from} to ${to.toLowerCase()}.\n`);
    return 0;
  },
};

export const messagesCommand: CliCommand = {
  name: 'messages',
  summary: 'the messages a supervisor sent and took in',
  help: `Usage: supervisor-runtime messages <supervisorId> [--sent | --received] [--limit N] [--json] [--url URL]

Lists the messages, newest first.
  --sent, --received  only one direction
  --limit N           at most N (default 100)
  --json              print the daemon's JSON answer
${CLIENT_HELP}`,
  options: { ...clientOptions, sent: { type: 'boolean' }, received: { type: 'boolean' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }, io) {
    const [id, ...extra] = positionals;
    if (!id || extra.length > 0 || (values.sent && values.received)) {
      io.err(`Expected one supervisor id (and at most one of --sent, --received).\n\n${messagesCommand.help}\n`);
      return 2;
    }
    const query = [values.sent ? 'direction=sent' : values.received ? 'direction=received' : '', typeof values.limit === 'string' ? `limit=${encodeURIComponent(values.limit)}` : '']
      .filter(Boolean)
      .join('&');
    const { messages } = await daemonClientFor(io, values).get<{ messages: MessageRecord[] }>(`/supervisors/${encodeURIComponent(id)}/messages${query ? `?${query}` : ''}`);
    if (values.json) {
      io.out(`${JSON.stringify({ messages }, null, 2)}\n`);
      return 0;
    }
    if (messages.length === 0) {
      io.out('No messages.\n');
      return 0;
    }
    io.out(
      table(
        ['direction', 'supervisor', 'id', 'message', 'sent'],
        messages.map((message) => [message.direction === 'sent' ? 'to' : 'from', message.peerId, message.messageId, truncate(message.body, 60), message.sentAt]),
      ),
    );
    return 0;
  },
};
