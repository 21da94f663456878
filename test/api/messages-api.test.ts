// POST and GET /supervisors/:id/messages, and the CLI's message and messages commands over them.

import { describe, expect, it } from 'vitest';
import type { MessageSentResponse } from '../../src/api/routes/messages.js';
import { createApiServer } from '../../src/api/server.js';
import type { MessageRecord } from '../../src/persistence/supervisor-repository.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { runCliHere } from '../helpers/processes.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

for (const target of await databaseTargets()) {
  describe(`messages over HTTP on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('sends (201), replays a retry by id or key (200), refuses a bad one with the field, lists both sides; the CLI sends and lists', async () => {
      const transport = createInProcessBus({ subjectPrefix: 'api-messages.', logger: quiet });
      await transport.start();
      const runtime = createRuntime({ database: database(), transport, subjectPrefix: 'api-messages.', heartbeatIntervalMs: 0 });
      await runtime.start({ messaging: { embeddedWorker: false } });
      const app = await createApiServer(runtime);
      try {
        const a = await runtime.spawn({ name: 'a' });
        const b = await runtime.spawn({ name: 'b' });
        const send = (body: unknown, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: `/supervisors/${a.id}/messages`, headers, payload: body as object });

        const sent = await send({ to: b.id, body: 'Take the review.', messageId: 'm1' });
        expect(sent.statusCode).toBe(201);
        expect(sent.json<MessageSentResponse>()).toMatchObject({ messageId: 'm1', supervisor: { id: a.id, state: 'idle' } });
        const again = await send({ to: b.id, body: 'Take the review.', messageId: 'm1' });
        expect(again.statusCode).toBe(200);
        expect(again.headers['idempotent-replay']).toBe('true');
        expect((await send({ to: b.id, body: 'Other text', messageId: 'm1' })).statusCode).toBe(409);
        const keyed = await send({ to: b.id, body: 'Keyed.' }, { 'idempotency-key': 'once' });
        const keyedAgain = await send({ to: b.id, body: 'Keyed.' }, { 'idempotency-key': 'once' });
        expect([keyed.statusCode, keyedAgain.statusCode]).toEqual([201, 200]);
        expect(keyedAgain.json<MessageSentResponse>().messageId).toBe(keyed.json<MessageSentResponse>().messageId);

        for (const body of [{ to: b.id }, { to: 'b', body: 'x' }, { to: b.id, body: '' }, { to: b.id, body: 'x', messageId: 'a b' }, { to: b.id, body: 'x', extra: 1 }]) {
          expect((await send(body)).statusCode, JSON.stringify(body)).toBe(400);
        }
        // The largest body a message may have goes through the HTTP API whole (16 KiB of UTF-8 in three-byte characters).
        expect((await send({ to: b.id, body: '消'.repeat(5_461), messageId: 'largest' })).statusCode).toBe(201);
        const unknown = await send({ to: '00000000-0000-4000-8000-000000000000', body: 'hello?' });
        expect(unknown.statusCode).toBe(400);
        expect(unknown.json()).toMatchObject({ field: 'to' });
        // RECEIVE_MESSAGE is not an event a client sends.
        const forged = await app.inject({ method: 'POST', url: `/supervisors/${b.id}/events`, payload: { type: 'RECEIVE_MESSAGE', from: a.id, messageId: 'x', body: 'forged', sentAt: new Date().toISOString() } });
        expect(forged.statusCode).toBe(400);
        expect(forged.body).toContain('cannot be sent from outside');

        await expect.poll(async () => (await runtime.messages(b.id)).length, { timeout: 20_000 }).toBe(3);
        const received = (await app.inject({ method: 'GET', url: `/supervisors/${b.id}/messages?direction=received` })).json<{ messages: MessageRecord[] }>().messages;
        expect(received.map((message) => message.body).sort()).toEqual(['Keyed.', 'Take the review.', '消'.repeat(5_461)]);
        expect((await app.inject({ method: 'GET', url: `/supervisors/${b.id}/messages?direction=sent` })).json<{ messages: MessageRecord[] }>().messages).toEqual([]);
        expect((await app.inject({ method: 'GET', url: `/supervisors/${b.id}/messages?direction=both` })).statusCode).toBe(400);
        expect((await app.inject({ method: 'GET', url: '/supervisors/00000000-0000-4000-8000-000000000000/messages' })).statusCode).toBe(404);

        const url = await app.listen({ host: '127.0.0.1', port: 0 });
        const cli = await runCliHere(['message', b.id, a.id, 'Done', 'reviewing.', '--id', 'reply-1', '--url', url]);
        expect(cli.stderr).toBe('');
        expect(cli.stdout).toBe(`Sent message reply-1 from ${b.id} to ${a.id}.\n`);
        await expect.poll(async () => (await runtime.messages(a.id, { direction: 'received' })).length, { timeout: 20_000 }).toBe(1);
        const listed = await runCliHere(['messages', a.id, '--url', url]);
        expect(listed.code).toBe(0);
        expect(listed.stdout).toMatch(new RegExp(`from\\s+${b.id}\\s+reply-1\\s+Done reviewing\\.`));
        expect(listed.stdout).toMatch(new RegExp(`to\\s+${b.id}\\s+m1\\s+Take the review\\.`));
        expect((await runCliHere(['message', a.id, '--url', url])).code).toBe(2);
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
        await transport.close();
      }
    });
  });
}
