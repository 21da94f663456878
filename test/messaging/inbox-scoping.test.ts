// The inbox path between recording (any daemon) and applying (the owner): what a message id deduplicates against, what
// happens to messages for finished supervisors, what counts against `maxUnexpectedFailures`, who applies while the
// owner has no transport, and supervisor ids in capitals.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { MessagingOptions } from '../../src/runtime/messaging.js';
import { answersSubject, taskEventsSubject } from '../../src/transport/subjects.js';
import { bytes, eventually, messagingTargets, useMessagingEnvironment } from './messaging-harness.js';

const FAST_CONSUMERS = { ackWaitMs: 600, retryDelayMs: 100 };
const FAST_MESSAGING: MessagingOptions = { embeddedWorker: false, relay: { pollIntervalMs: 100 }, consumers: FAST_CONSUMERS, inbox: { pollIntervalMs: 100 } };
/** Long enough for a message to be applied on either target, short enough that a failing test fails fast. */
const SETTLE_MS = 5_000;

for (const target of await messagingTargets()) {
  describe(`inbox scoping on ${target.name}`, () => {
    const env = useMessagingEnvironment(target);

    async function messagingRuntime(options: Parameters<typeof env.runtime>[0] = {}) {
      const transport = await env.transport();
      const runtime = await env.runtime({ ...options, transport });
      const messaging = await runtime.startMessaging(FAST_MESSAGING);
      env.defer(() => messaging.stop());
      return { runtime, messaging, transport };
    }

    it('message ids deduplicate per subject: a task event whose id an answer already used (another stream) is applied', async () => {
      const { runtime, messaging, transport } = await messagingRuntime();
      const supervisor = await runtime.spawn({ name: 'collide' });
      const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'work' });
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Go?' });

      // A front end numbers its answers 1, 2, 3…; a worker numbers its events 1, 2, 3… too.
      await transport.publish(answersSubject(supervisor.id, env.prefix()), bytes({ questionId, answer: 'yes' }), { msgId: '1' });
      await eventually('the answer to apply', () => (messaging.consumers!.stats().answers.applied === 1 ? true : undefined), SETTLE_MS);
      const event = await transport.publish(taskEventsSubject(taskId, env.prefix()), bytes({ taskId, type: 'completed', result: 'ok' }), { msgId: '1' });
      expect(event.duplicate).toBe(false);

      await eventually(() => `the task event to apply (${JSON.stringify(messaging.consumers!.stats().taskEvents)})`, () => (messaging.consumers!.stats().taskEvents.applied === 1 ? true : undefined), SETTLE_MS);
      expect(messaging.consumers!.stats().taskEvents).toMatchObject({ applied: 1, duplicates: 0 });
      expect((await runtime.tasks(supervisor.id)).map((task) => task.status)).toEqual(['completed']);
      const keys = await sql<{ msg_id: string }>`SELECT msg_id FROM supervisor_inbox ORDER BY id`.execute(env.database().db);
      expect(keys.rows.map((row) => row.msg_id)).toEqual([`${answersSubject(supervisor.id, env.prefix())}\n1`, `${taskEventsSubject(taskId, env.prefix())}\n1`]);
    });
  });
}
