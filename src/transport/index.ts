// The transport's public face, and the one switch between NATS and the in-process bus.

import { createInProcessBus } from './in-process-bus.js';
import { createNatsTransport } from './nats-transport.js';
import type { Transport } from './transport.js';
import type { TransportLogger } from './transport-logger.js';

export * from './transport.js';
export * from './transport-logger.js';
export * from './subjects.js';
export * from './messages.js';
export * from './errors.js';
export { HANDLER_ERROR_NAK_DELAY_MS } from './handler-failure.js';
export { createInProcessBus, DEFAULT_DEDUP_WINDOW_MS, DEFAULT_MAX_AGE_MS, type InProcessBusOptions } from './in-process-bus.js';
export { createNatsTransport, type NatsTransportOptions } from './nats-transport.js';

export interface TransportConfig {
  /** Set (usually from NATS_URL) to use NATS JetStream; unset means the in-process bus. */
  natsUrl?: string;
  subjectPrefix?: string;
  name?: string;
  logger?: TransportLogger;
}

export function createTransport(config: TransportConfig): Transport {
  const natsUrl = config.natsUrl?.trim();
  if (natsUrl) {
    return createNatsTransport({
      servers: natsUrl,
      subjectPrefix: config.subjectPrefix,
      name: config.name,
      logger: config.logger,
    });
  }
  return createInProcessBus({ subjectPrefix: config.subjectPrefix, logger: config.logger });
}
