// Messages between supervisors over HTTP: send one from a supervisor, and list what a supervisor sent and took in.

import type { FastifyInstance } from 'fastify';
import type { MessageRecord } from '../../persistence/supervisor-repository.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { idFromIdempotencyKey } from '../idempotency-key.js';
import { listMessagesQuery, sendMessageBody, supervisorIdParams, type ListMessagesQuery, type SendMessageBody, type SupervisorIdParams } from '../schemas.js';
import { describeAfterCommit, type SupervisorView } from '../views.js';
import { REPLAY_HEADER } from './supervisors.js';

export interface MessageSentResponse {
  messageId: string;
  /** The sender, after the step that sent it. */
  supervisor: SupervisorView;
}

export function registerMessageRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.post<{ Params: SupervisorIdParams; Body: SendMessageBody; Reply: MessageSentResponse }>(
    '/supervisors/:id/messages',
    { schema: { params: supervisorIdParams, body: sendMessageBody } },
    async (request, reply) => {
      const from = request.params.id.toLowerCase();
      const messageId = request.body.messageId ?? idFromIdempotencyKey(request, `supervisors/${from}/messages`);
      const sent = await runtime.sendMessage(from, { to: request.body.to, body: request.body.body, ...(messageId !== undefined ? { messageId } : {}) });
      if (sent.replayed) reply.header(REPLAY_HEADER, 'true');
      return reply.code(sent.replayed ? 200 : 201).send({ messageId: sent.messageId, supervisor: await describeAfterCommit(runtime, from) });
    },
  );

  app.get<{ Params: SupervisorIdParams; Querystring: ListMessagesQuery; Reply: { messages: MessageRecord[] } }>(
    '/supervisors/:id/messages',
    { schema: { params: supervisorIdParams, querystring: listMessagesQuery } },
    async (request) => ({
      messages: await runtime.messages(request.params.id, {
        ...(request.query.direction ? { direction: request.query.direction } : {}),
        limit: Math.min(Number(request.query.limit ?? 100), 1000),
      }),
    }),
  );
}
