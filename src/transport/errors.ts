// Typed transport errors: each says what failed and what to do next.

import { errorText, SupervisorRuntimeError } from '../domain/errors.js';

/** The transport was closed; it cannot be reopened. */
export class TransportClosedError extends SupervisorRuntimeError {
  override readonly name = 'TransportClosedError';
  constructor(readonly operation: string) {
    super(
      `Cannot ${operation}: the transport is closed. The runtime closes it only on shutdown; create a new transport to send or receive again.`,
    );
  }
}

/** publish/subscribe was called before start() created the streams. */
export class TransportNotStartedError extends SupervisorRuntimeError {
  override readonly name = 'TransportNotStartedError';
  constructor(readonly operation: string) {
    super(`Cannot ${operation}: the transport is not started. Call and await start() first; it connects and creates the streams.`);
  }
}

/** NATS (or its JetStream) could not be reached; nothing was sent. */
export class TransportUnavailableError extends SupervisorRuntimeError {
  override readonly name = 'TransportUnavailableError';
  constructor(
    readonly operation: string,
    readonly servers: string,
    cause: unknown,
  ) {
    super(
      `NATS unavailable during ${operation} (${servers}): ${errorText(cause)}. ` +
        'Check that NATS_URL points at a running nats-server started with -js (JetStream enabled), then retry; ' +
        'a message published with the same msgId again is stored once.',
      undefined,
      { cause },
    );
  }
}

/** A received message is not JSON or not the shape its subject promises. It is never retried. */
export class MalformedMessageError extends SupervisorRuntimeError {
  override readonly name = 'MalformedMessageError';
  constructor(
    readonly subject: string | null,
    readonly problems: string[],
  ) {
    super(
      `Malformed message${subject ? ` on ${subject}` : ''}: ${problems.join('; ')}. ` +
        'It will not be retried; fix the publisher and publish a corrected message (see src/transport/messages.ts for the expected fields).',
    );
  }
}

/**
 * A message between supervisors whose `from` names no stored supervisor: only a raw publish on
 * `supervisors.<to>.messages` can carry one (runtime.sendMessage sends from a stored supervisor only). It is never
 * retried and nothing is taken in; it is kept as a dead letter.
 */
export class UnknownSenderError extends SupervisorRuntimeError {
  override readonly name = 'UnknownSenderError';
  constructor(
    readonly subject: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(
      `Message on ${subject} says it is from supervisor ${from}, which is not a stored supervisor: it was not taken in by ${to} and will not be retried. ` +
        'Send messages with runtime.sendMessage(from, { to, body }) or POST /supervisors/:from/messages, which send them from a stored supervisor; ' +
        'a message published on supervisors.<to>.messages directly must name an existing supervisor in `from`.',
    );
  }
}

/** A subject, filter or prefix that cannot be routed to a stream. Nothing was sent. */
export class InvalidSubjectError extends SupervisorRuntimeError {
  override readonly name = 'InvalidSubjectError';
  constructor(
    readonly subject: string,
    detail: string,
  ) {
    super(`Invalid subject "${subject}": ${detail}.`);
  }
}
