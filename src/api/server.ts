// The HTTP API: a Fastify server over a SupervisorRuntime, JSON in and out, every error mapped in one place.

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { errorText } from '../domain/errors.js';
import { silentLogger, type Logger } from '../runtime/logger.js';
import type { SupervisorRuntime } from '../runtime/supervisor-runtime.js';
import { requireBearerToken, requireLoopbackHost } from './auth.js';
import { refuseUnstorableText } from './nul-guard.js';
import { formatSchemaErrors, MAX_PARAM_LENGTH, toErrorReply, type ApiErrorBody } from './errors.js';
import { registerConversationRoutes } from './routes/conversation.js';
import { registerHistoryRoutes } from './routes/history.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerLiveRoutes } from './routes/live.js';
import { registerRestorationRoutes } from './routes/restorations.js';
import { registerSupervisorRoutes } from './routes/supervisors.js';
import { registerForkRoutes } from './routes/forks.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerTaskRoutes } from './routes/tasks.js';

export interface ApiServerOptions {
  /** When set, every request but `GET /healthz` needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  logger?: Logger | undefined;
  /** Answer only requests whose Host header names this machine (a tokenless daemon on loopback). */
  loopbackOnly?: boolean | undefined;
  /** Largest accepted request body in bytes (default 64 KiB). */
  bodyLimit?: number | undefined;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * `close()` lets requests in flight finish, then ends every connection. Node's server.close() only ends connections
 * that are idle at that moment; a keep-alive connection whose request finishes later would hold the close open for
 * the whole keep-alive timeout (72 s in Fastify), far past the daemon's shutdown deadline.
 */
function closeGracefully(app: FastifyInstance): void {
  const inFlight = new Set<object>();
  let closing = false;
  const endConnectionsWhenIdle = () => {
    if (closing && inFlight.size === 0) app.server.closeAllConnections();
  };
  const settled = async (request: object) => {
    inFlight.delete(request);
    endConnectionsWhenIdle();
  };
  // Registered before every other hook, so each request counted here reaches onResponse or onRequestAbort.
  app.addHook('onRequest', async (request) => {
    inFlight.add(request);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', settled);
  app.addHook('onRequestAbort', settled);
  app.addHook('preClose', async () => {
    closing = true;
    endConnectionsWhenIdle();
  });
}

export async function createApiServer(runtime: SupervisorRuntime, options: ApiServerOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? silentLogger;
  const app = Fastify({
    // The daemon logs through its own Logger (below); Fastify's would be a second, differently shaped stream.
    logger: false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Fastify's default (100) makes an id longer than 100 characters "no route": task and question ids go up to 128.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (a path segment past that length, a malformed URL) in the API's error body.
    frameworkErrors: (error, _request, reply) => {
      const { statusCode, body } = toErrorReply(error);
      void (reply as FastifyReply).code(statusCode).send(body);
    },
    ajv: {
      customOptions: {
        // Fastify's defaults strip unknown fields and coerce types; we want a bad body refused, naming the field.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        discriminator: true,
      },
    },
    schemaErrorFormatter: formatSchemaErrors,
  });

  // An empty body labelled application/json (many HTTP clients label every POST) is no body, not a 400: routes whose
  // body is optional take it as absent, and the others refuse it as a missing body naming what they need.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, text, done);
  });

  closeGracefully(app);
  if (options.token) requireBearerToken(app, options.token);
  else if (options.loopbackOnly) requireLoopbackHost(app);
  refuseUnstorableText(app);

  app.setErrorHandler((error, request, reply) => {
    const { statusCode, body, unexpected } = toErrorReply(error);
    if (unexpected) {
      logger.error({ method: request.method, url: request.url, reqId: request.id, err: errorText(error), stack: error instanceof Error ? error.stack : undefined }, 'request failed');
    }
    if (statusCode === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(statusCode).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const body: ApiErrorBody = {
      error: 'Not Found',
      message: `No route ${request.method} ${request.url.split('?')[0]}. The API serves /supervisors, /supervisors/:id/… (…/events, …/questions, …/tasks, …/messages, …/conversation, …/checkpoints, …/fork, …/forks, …/resume, …/check), /tasks/:taskId/events, /restorations, /check, /daemons, /dead-letters, /live, /metrics, /dashboard and /healthz.`,
    };
    return reply.code(404).send(body);
  });

  // A supervisor id is a UUID, written in any case; the runtime and the database keep the lowercase form, so a route
  // sees that one (an uppercase id would otherwise miss the supervisor this daemon runs).
  app.addHook('preHandler', async (request) => {
    const params = request.params as Record<string, unknown> | undefined;
    if (params && typeof params.id === 'string') params.id = params.id.toLowerCase();
  });

  app.addHook('onResponse', async (request, reply) => {
    logger.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  registerHealthRoutes(app, runtime);
  registerSupervisorRoutes(app, runtime);
  registerTaskRoutes(app, runtime);
  registerRestorationRoutes(app, runtime);
  registerForkRoutes(app, runtime);
  registerMessageRoutes(app, runtime);
  registerConversationRoutes(app, runtime);
  registerHistoryRoutes(app, runtime);
  registerMetricsRoutes(app, runtime);
  registerLiveRoutes(app, runtime);
  registerDashboardRoutes(app);
  await app.ready();
  return app;
}
