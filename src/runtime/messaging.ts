// Everything that connects a runtime to its transport, started together: outbox relay, inbound consumers, and optionally
// a task worker. The consumers record into the inbox whose applier (the owner's side, which needs only the database)
// the runtime already runs. The runtime starts it; its parts register on the host's hooks, so runtime.shutdown() stops
// them in order.

import { startInboundConsumers, type InboundConsumerOptions, type InboundConsumers } from './inbound-consumers.js';
import type { InboxApplierOptions, OwnerInbox } from './inbox-applier.js';
import { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox-relay.js';
import type { RuntimeHost } from './runtime-host.js';
import { startTaskWorker, type TaskWorker, type TaskWorkerOptions } from './task-worker.js';
import { startTaskWorkerWatch, type TaskWorkerWatch, type TaskWorkerWatchOptions } from './task-worker-watch.js';

export interface MessagingOptions {
  /** Run the sample task worker in this process (the embedded default, where no other worker exists). */
  embeddedWorker: boolean;
  /** Worker settings; transport, prefix and logger come from the runtime. */
  worker?: Partial<Omit<TaskWorkerOptions, 'transport' | 'subjectPrefix'>>;
  relay?: OutboxRelayOptions;
  consumers?: InboundConsumerOptions;
  /** The inbox applier's settings, when startMessaging is what starts it (start() starts it before messaging). */
  inbox?: InboxApplierOptions;
  /** Warn when tasks wait on tasks.spawn and no worker takes them (default on, checked every 5 s; `false` turns it off). */
  taskWorkerWatch?: TaskWorkerWatchOptions | false;
}

export interface Messaging {
  /** null when the runtime has no transport (library use): outbox rows then wait for a runtime that has one. */
  relay: OutboxRelay | null;
  consumers: InboundConsumers | null;
  worker: TaskWorker | null;
  /** Whether anyone takes the tasks this daemon's supervisors hand out (null without a transport or when turned off). */
  taskWorkerWatch: TaskWorkerWatch | null;
  /**
   * Stop worker, consumers and relay (the relay after a bounded final drain). runtime.shutdown() does this too, and
   * then stops the inbox applier, which runs without the transport.
   */
  stop(): Promise<void>;
}

export async function startMessaging(host: RuntimeHost, inbox: OwnerInbox, options: MessagingOptions): Promise<Messaging> {
  const transport = host.transport;
  if (!transport) {
    host.logger.warn({}, 'no transport configured: questions, task spawns and state changes stay in the outbox, and no answers or task events arrive');
    return { relay: null, consumers: null, worker: null, taskWorkerWatch: null, stop: async () => undefined };
  }
  await transport.start();
  const relay = startOutboxRelay(host, options.relay);
  let consumers: InboundConsumers | null = null;
  let worker: TaskWorker | null = null;
  try {
    consumers = await startInboundConsumers({ host, counts: inbox.counts, channel: inbox.channel, onRecordedForSelf: () => inbox.wake() }, options.consumers);
    if (options.embeddedWorker) {
      worker = await startTaskWorker({
        ...options.worker,
        transport,
        subjectPrefix: transport.subjectPrefix,
        logger: options.worker?.logger ?? host.logger.child({ component: 'task-worker' }),
      });
    }
  } catch (error) {
    await worker?.stop();
    await consumers?.stop();
    await relay.stop();
    throw error;
  }
  const taskWorkerWatch =
    options.taskWorkerWatch === false
      ? null
      : startTaskWorkerWatch({ transport, registry: host.registry, logger: host.logger, now: () => host.now() }, options.taskWorkerWatch);
  let stopping: Promise<void> | null = null;
  const messaging = {
    relay,
    consumers,
    worker,
    taskWorkerWatch,
    stop() {
      stopping ??= (async () => {
        await taskWorkerWatch?.stop();
        await worker?.stop();
        await consumers?.stop();
        await relay.drain(options.relay?.shutdownDrainMs ?? 2_000);
        await relay.stop();
      })();
      return stopping;
    },
  };
  host.hooks.onShutdown.push(() => messaging.stop());
  return messaging;
}
