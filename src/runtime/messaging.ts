// Everything that connects a runtime to its transport, started together: outbox relay, inbound consumers, and optionally a task worker.

import { startInboundConsumers, type InboundConsumerOptions, type InboundConsumers } from './inbound-consumers.js';
import { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox-relay.js';
import type { SupervisorRuntime } from './supervisor-runtime.js';
import { startTaskWorker, type TaskWorker, type TaskWorkerOptions } from './task-worker.js';

export interface MessagingOptions {
  /** Run the sample task worker in this process (the embedded default, where no other worker exists). */
  embeddedWorker: boolean;
  /** Worker settings; transport, prefix and logger come from the runtime. */
  worker?: Partial<Omit<TaskWorkerOptions, 'transport' | 'subjectPrefix'>>;
  relay?: OutboxRelayOptions;
  consumers?: InboundConsumerOptions;
}

export interface Messaging {
  /** null when the runtime has no transport (library use): outbox rows then wait for a runtime that has one. */
  relay: OutboxRelay | null;
  consumers: InboundConsumers | null;
  worker: TaskWorker | null;
  /** Stop worker, consumers and relay (the relay after a bounded final drain). runtime.shutdown() does this too. */
  stop(): Promise<void>;
}

/**
 * Start the transport (idempotent), then the relay, the inbound consumers and, with `embeddedWorker`, a task worker.
 * Each part registers itself on runtime.hooks, so runtime.shutdown() stops them in order.
 */
export async function startMessaging(runtime: SupervisorRuntime, options: MessagingOptions): Promise<Messaging> {
  const transport = runtime.transport;
  if (!transport) {
    runtime.logger.warn({}, 'no transport configured: questions, task spawns and state changes stay in the outbox, and no answers or task events arrive');
    return { relay: null, consumers: null, worker: null, stop: async () => undefined };
  }
  await transport.start();
  const relay = startOutboxRelay(runtime, options.relay);
  let consumers: InboundConsumers | null = null;
  let worker: TaskWorker | null = null;
  try {
    consumers = await startInboundConsumers(runtime, options.consumers);
    if (options.embeddedWorker) {
      const started = await startTaskWorker({
        ...options.worker,
        transport,
        subjectPrefix: transport.subjectPrefix,
        logger: options.worker?.logger ?? runtime.logger.child({ component: 'task-worker' }),
      });
      worker = started;
      runtime.hooks.onShutdown.push(() => started.stop());
    }
  } catch (error) {
    await consumers?.stop();
    await relay.stop();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  return {
    relay,
    consumers,
    worker,
    stop() {
      stopping ??= (async () => {
        await worker?.stop();
        await consumers?.stop();
        await relay.drain(options.relay?.shutdownDrainMs ?? 2_000);
        await relay.stop();
      })();
      return stopping;
    },
  };
}
