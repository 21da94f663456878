// What both transports do when a message handler throws: malformed messages are termed, anything else comes back soon.

import { MalformedMessageError } from './errors.js';
import type { InboundMessage } from './transport.js';
import type { TransportLogger } from './transport-logger.js';

/** A handler that throws gets its message back after this long. */
export const HANDLER_ERROR_NAK_DELAY_MS = 500;

export async function settleAfterHandlerFailure(
  logger: TransportLogger,
  consumer: { durable: string; maxDeliver: number },
  message: InboundMessage,
  error: unknown,
): Promise<void> {
  const details = {
    durable: consumer.durable,
    subject: message.subject,
    msgId: message.msgId,
    deliveryCount: message.deliveryCount,
    error: error instanceof Error ? error.message : String(error),
  };
  try {
    // Redelivering a message that cannot be parsed would fail the same way maxDeliver times.
    if (error instanceof MalformedMessageError) {
      logger.warn(details, 'handler threw MalformedMessageError; message terminated');
      await message.term(error.message);
      return;
    }
    if (message.deliveryCount >= consumer.maxDeliver) {
      logger.error(details, `handler failed on the last allowed delivery (maxDeliver ${consumer.maxDeliver}); the message is dropped`);
    } else {
      logger.warn(details, `handler failed; the message is redelivered in ${HANDLER_ERROR_NAK_DELAY_MS} ms`);
    }
    await message.nak(HANDLER_ERROR_NAK_DELAY_MS);
  } catch (settleError) {
    // The connection is gone: the server redelivers after ackWait anyway.
    logger.warn({ ...details, settleError: String(settleError) }, 'could not settle a message after a handler failure');
  }
}
