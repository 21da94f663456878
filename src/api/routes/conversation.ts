// GET /supervisors/:id/conversation: the supervisor's LLM conversation, in order (it survives restarts).

import type { FastifyInstance } from 'fastify';
import type { ConversationEntry } from '../../domain/conversation.js';
import type { SupervisorRuntime } from '../../runtime/supervisor-runtime.js';
import { supervisorIdParams, wholeNumberText, type SupervisorIdParams } from '../schemas.js';

interface ConversationQuery {
  fromSeq?: number;
  limit?: number;
}

const conversationQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { fromSeq: wholeNumberText(9, 0), limit: wholeNumberText(5, 0) },
} as const;

export function registerConversationRoutes(app: FastifyInstance, runtime: SupervisorRuntime): void {
  app.get<{ Params: SupervisorIdParams; Querystring: { fromSeq?: string; limit?: string }; Reply: { entries: ConversationEntry[] } }>(
    '/supervisors/:id/conversation',
    { schema: { params: supervisorIdParams, querystring: conversationQuery } },
    async (request) => {
      const query: ConversationQuery = {
        ...(request.query.fromSeq !== undefined ? { fromSeq: Number(request.query.fromSeq) } : {}),
        limit: Math.min(Number(request.query.limit ?? 1000), 10_000),
      };
      return { entries: await runtime.conversation(request.params.id, query) };
    },
  );
}
