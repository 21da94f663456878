// Runs the transport contract on the in-process bus always, and on the real NATS server when reachable.

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { streamNames } from '../../src/transport/subjects.js';
import type { Transport } from '../../src/transport/transport.js';
import { NATS_ENABLE_LINE, natsAvailable, natsUrlForTests } from '../helpers/nats-server.js';
import { serverGate } from '../helpers/servers.js';
import { transportContract } from './transport-contract.js';

const quietLogger = { info: () => {}, warn: () => {}, error: () => {} };

transportContract('in-process bus', { makeTransport: () => createInProcessBus({ logger: quietLogger }) });

const natsUrl = natsUrlForTests();
const gate = serverGate('NATS', await natsAvailable(natsUrl), NATS_ENABLE_LINE);

if (gate.run) {
  let counter = 0;
  transportContract(`NATS JetStream (${natsUrl})`, {
    makeTransport: () =>
      createNatsTransport({
        servers: natsUrl,
        // A prefix of its own per test: its own subjects and its own streams on the shared server.
        subjectPrefix: `ct${process.pid}x${Date.now().toString(36)}x${++counter}.`,
        name: 'transport-contract-test',
        logger: quietLogger,
      }),
    cleanup: (transport) => deleteStreams(natsUrl, transport),
  });
}

async function deleteStreams(url: string, transport: Transport): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of Object.values(streamNames(transport.subjectPrefix))) {
      await jsm.streams.delete(name).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}
