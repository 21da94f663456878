// The HTTP API's public face: the server factory, its error mapping and the shapes it answers with.

export { createApiServer, DEFAULT_BODY_LIMIT, type ApiServerOptions } from './server.js';
export { IdempotencyKeyReusedError, RequestValidationError, UnauthorizedError, toErrorReply, type ApiErrorBody, type ErrorReply } from './errors.js';
export * from './views.js';
