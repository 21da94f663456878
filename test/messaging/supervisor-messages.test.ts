// Messages between supervisors: sent with the sender's step through the outbox, carried by the transport, recorded in
// the inbox by whichever daemon gets them and taken in once by the receiver's owner.

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { InvalidSupervisorDataError } from '../../src/domain/errors.js';
import { getConversation } from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { EventRefusedError } from '../../src/domain/errors.js';
import { encodeMessage, type SupervisorMessage } from '../../src/transport/messages.js';
import { messagesSubject } from '../../src/transport/subjects.js';
import { messagingTargets, sleep, useMessagingEnvironment } from './messaging-harness.js';

for (const target of await messagingTargets()) {
  describe(`messages between supervisors on ${target.name}`, () => {
    const env = useMessagingEnvironment(target);

    async function twoDaemons(drivers: AgentDriver[] = []) {
      const one = await env.runtime({ daemonId: 'daemon-one', drivers });
      const two = await env.runtime({ daemonId: 'daemon-two', drivers });
      await one.start({ messaging: { embeddedWorker: false } });
      await two.start({ messaging: { embeddedWorker: false } });
      return { one, two };
    }

    it('a message from a supervisor on one daemon reaches one on another: both conversations, both rows, the receiver\'s driver told once', async () => {
      const heard: Array<{ to: string; from: string; messageId: string; body: string }> = [];
      const listening: AgentDriver = { name: 'listening', onMessage: (supervisor, message) => void heard.push({ to: supervisor.id, ...message }) };
      const { one, two } = await twoDaemons([listening]);
      const sender = await one.spawn({ name: 'planner' });
      const receiver = await two.spawn({ name: 'builder', driver: 'listening' });

      const sent = await one.sendMessage(sender.id, { to: receiver.id.toUpperCase(), body: 'Build the release branch, please.', messageId: 'handoff-1' });
      expect(sent).toEqual({ messageId: 'handoff-1' });
      await expect.poll(async () => (await two.messages(receiver.id)).length, { timeout: 20_000 }).toBe(1);

      const [received] = await two.messages(receiver.id);
      expect(received).toMatchObject({ direction: 'received', peerId: sender.id, messageId: 'handoff-1', body: 'Build the release branch, please.' });
      expect(received?.receivedAt).not.toBeNull();
      expect(await one.messages(sender.id)).toMatchObject([{ direction: 'sent', peerId: receiver.id, messageId: 'handoff-1', receivedAt: null }]);
      const senderLine = (await getConversation(env.database().db, sender.id)).at(-1);
      expect(senderLine).toMatchObject({ role: 'assistant', content: `Sent message handoff-1 to supervisor ${receiver.id}: Build the release branch, please.` });
      const receiverLine = (await getConversation(env.database().db, receiver.id)).at(-1);
      expect(receiverLine).toMatchObject({ role: 'user', content: `Message handoff-1 from supervisor ${sender.id}: Build the release branch, please.` });
      await expect.poll(() => heard).toEqual([{ to: receiver.id, from: sender.id, messageId: 'handoff-1', body: 'Build the release branch, please.', sentAt: received?.sentAt }]);
      // No state change on either side.
      expect(one.get(sender.id)?.state).toBe('idle');
      expect(two.get(receiver.id)?.state).toBe('idle');

      // A retry with the same id is the same message: a replay, sent once, taken in once.
      expect(await one.sendMessage(sender.id, { to: receiver.id, body: 'Build the release branch, please.', messageId: 'handoff-1' })).toEqual({ messageId: 'handoff-1', replayed: true });
      // The same id for another message is refused, writing nothing.
      await expect(one.sendMessage(sender.id, { to: receiver.id, body: 'Something else', messageId: 'handoff-1' })).rejects.toBeInstanceOf(EventRefusedError);
      // Through send(), a used id is refused like a used question id.
      await expect(one.send(sender.id, { type: 'SEND_MESSAGE', to: receiver.id, body: 'Build the release branch, please.', messageId: 'handoff-1' })).rejects.toBeInstanceOf(EventRefusedError);
      const outbox = await sql<{ n: string }>`SELECT count(*)::text AS n FROM supervisor_outbox WHERE supervisor_id = ${sender.id} AND subject LIKE '%.messages'`.execute(env.database().db);
      expect(outbox.rows[0]?.n).toBe('1');

      // Redelivered under another transport id (a republish): recorded again, taken in once all the same.
      const transport = await env.transport();
      const copy: SupervisorMessage = { v: 1, from: sender.id, to: receiver.id, messageId: 'handoff-1', body: 'Build the release branch, please.', sentAt: received!.sentAt };
      await transport.publish(messagesSubject(receiver.id, env.prefix()), encodeMessage(copy), { msgId: 'republished-1' });
      await expect.poll(async () => (one.stats().inbound?.messages.duplicates ?? 0) + (two.stats().inbound?.messages.duplicates ?? 0), { timeout: 20_000 }).toBe(1);
      expect(await two.messages(receiver.id)).toHaveLength(1);
      expect(heard).toHaveLength(1);
      expect((await getConversation(env.database().db, receiver.id)).filter((entry) => entry.content.startsWith('Message handoff-1'))).toHaveLength(1);
    });

    it('a retry of a sent message after its receiver finished is still a replay; a body up to 16 KiB of UTF-8 is sent, one byte more is refused', async () => {
      const { one } = await twoDaemons();
      const sender = await one.spawn({ name: 'planner' });
      const receiver = await one.spawn({ name: 'builder' });
      const message = { to: receiver.id, body: 'Build the release branch, please.', messageId: 'handoff-1' };
      expect(await one.sendMessage(sender.id, message)).toEqual({ messageId: 'handoff-1' });
      await expect.poll(async () => (await one.messages(receiver.id, { direction: 'received' })).length, { timeout: 20_000 }).toBe(1);
      await one.send(receiver.id, { type: 'COMPLETE', summary: 'built' });
      // The caller never heard (a timeout) and retries: it was sent, so it is a replay, not "receiver finished".
      expect(await one.sendMessage(sender.id, message)).toEqual({ messageId: 'handoff-1', replayed: true });
      // And after its sender finished, asked of a daemon that does not run it (finished supervisors are not loaded).
      const other = await one.spawn({ name: 'reader' });
      await one.send(sender.id, { type: 'COMPLETE', summary: 'handed off' });
      const elsewhere = await env.runtime({ daemonId: 'daemon-three' });
      expect(await elsewhere.sendMessage(sender.id, message)).toEqual({ messageId: 'handoff-1', replayed: true });
      const writer = await one.spawn({ name: 'writer' });

      // 16,384 bytes of three-byte characters, a little under; and one four-byte character over.
      const fits = '消'.repeat(5_461);
      expect(await one.sendMessage(writer.id, { to: other.id, body: fits, messageId: 'big' })).toEqual({ messageId: 'big' });
      await expect(one.sendMessage(writer.id, { to: other.id, body: `${'a'.repeat(16_381)}😀`, messageId: 'too-big' })).rejects.toThrow(/at most 16384 bytes of UTF-8 \(got 16385\)/);
    });

    it('refuses what cannot be delivered before anything is written: an unknown or finished receiver, itself, an empty body, a bad id', async () => {
      const { one } = await twoDaemons();
      const sender = await one.spawn({ name: 'planner' });
      const done = await one.spawn({ name: 'finished' });
      await one.send(done.id, { type: 'COMPLETE', summary: 'done' });
      const step = one.get(sender.id)?.committed.step;
      for (const [message, field] of [
        [{ to: '00000000-0000-4000-8000-000000000000', body: 'hi' }, 'to'],
        [{ to: done.id, body: 'hi' }, 'to'],
        [{ to: sender.id, body: 'hi' }, 'to'],
        [{ to: 'not-a-uuid', body: 'hi' }, 'to'],
        [{ to: done.id, body: 'hi', messageId: 'has space' }, 'messageId'],
      ] as const) {
        const refused = await one.sendMessage(sender.id, message).catch((error: unknown) => error);
        expect(refused, JSON.stringify(message)).toBeInstanceOf(InvalidSupervisorDataError);
        expect((refused as InvalidSupervisorDataError).field).toBe(field);
      }
      const live = await one.spawn({ name: 'live' });
      await expect(one.sendMessage(sender.id, { to: live.id, body: '   ' })).rejects.toBeInstanceOf(EventRefusedError);
      expect(one.get(sender.id)?.committed.step).toBe(step);
      expect(await one.messages(sender.id)).toEqual([]);
    });

    it('a raw message whose from names no stored supervisor is dead-lettered and counted, nothing taken in; a finished or forked sender still counts', async () => {
      const heard: string[] = [];
      const listening: AgentDriver = { name: 'listening', onMessage: (_supervisor, message) => void heard.push(message.messageId) };
      const { one, two } = await twoDaemons([listening]);
      const receiver = await two.spawn({ name: 'builder', driver: 'listening' });
      const transport = await env.transport();
      const subject = messagesSubject(receiver.id, env.prefix());
      const raw = (from: string, messageId: string): SupervisorMessage => ({ v: 1, from, to: receiver.id, messageId, body: `from ${messageId}`, sentAt: new Date().toISOString() });

      const nobody = '00000000-0000-4000-8000-00000000beef';
      await transport.publish(subject, encodeMessage(raw(nobody, 'forged-1')), { msgId: 'forged-1' });
      const unknown = () => (one.stats().inbound?.messages.unknown ?? 0) + (two.stats().inbound?.messages.unknown ?? 0);
      await expect.poll(unknown, { timeout: 20_000 }).toBe(1);
      await expect.poll(async () => (await one.deadLetters()).deadLetters.map((letter) => letter.reason), { timeout: 20_000 }).toEqual([`unknown sender ${nobody}: no stored supervisor sent it`]);
      const inbox = await sql<{ n: string }>`SELECT count(*)::text AS n FROM supervisor_inbox WHERE supervisor_id = ${receiver.id}`.execute(env.database().db);
      expect(inbox.rows[0]?.n).toBe('0');

      // Senders that exist count, whatever became of them: a finished one, and a fork (its own supervisor row).
      const finished = await one.spawn({ name: 'finished' });
      await one.send(finished.id, { type: 'COMPLETE', summary: 'done' });
      const source = await one.spawn({ name: 'source' });
      const fork = await one.fork(source.id, { start: false });
      await transport.publish(subject, encodeMessage(raw(finished.id.toUpperCase(), 'from-finished')), { msgId: 'from-finished' });
      await transport.publish(subject, encodeMessage(raw(fork.supervisor.id, 'from-fork')), { msgId: 'from-fork' });
      await expect.poll(async () => (await two.messages(receiver.id)).map((message) => message.messageId).sort(), { timeout: 20_000 }).toEqual(['from-finished', 'from-fork']);
      await expect.poll(() => [...heard].sort()).toEqual(['from-finished', 'from-fork']);
      // The forged one was never taken in: not in the conversation, not heard, and the daemon kept taking the rest.
      const conversation = await getConversation(env.database().db, receiver.id);
      expect(conversation.filter((entry) => entry.content.includes(nobody))).toEqual([]);
      expect(unknown()).toBe(1);
      expect(two.get(receiver.id)?.state).toBe('idle');

      // One from the receiver to itself (sendMessage refuses that) is refused the same when published raw.
      await transport.publish(subject, encodeMessage(raw(receiver.id, 'to-itself')), { msgId: 'to-itself' });
      await expect
        .poll(async () => (await one.deadLetters()).deadLetters.map((letter) => letter.reason).filter((reason) => reason.includes('same supervisor')), { timeout: 20_000 })
        .toEqual([expect.stringContaining(`from and to are the same supervisor (${receiver.id})`)]);
      expect((await two.messages(receiver.id)).map((message) => message.messageId).sort()).toEqual(['from-finished', 'from-fork']);
      expect([...heard].sort()).toEqual(['from-finished', 'from-fork']);
    });

    it('a message to a supervisor that has not started is taken in at once, and its driver hears it only after START, once, across restarts', async () => {
      const heard = new Map<string, string[]>();
      const hear = (id: string, what: string) => void heard.set(id, [...(heard.get(id) ?? []), what]);
      const recording: AgentDriver = {
        name: 'recording',
        onStarted: (supervisor) => hear(supervisor.id, 'started'),
        onRestored: (supervisor) => hear(supervisor.id, 'restored'),
        onMessage: (supervisor, message) => hear(supervisor.id, `message ${message.messageId}`),
      };
      const one = await env.runtime({ daemonId: 'daemon-one', drivers: [recording] });
      await one.start({ messaging: { embeddedWorker: false } });
      const sender = await one.spawn({ name: 'planner' });
      const later = await one.spawn({ name: 'started later', driver: 'recording', start: false });
      const unstarted = await one.spawn({ name: 'never started here', driver: 'recording', start: false });
      const takenIn = async (id: string, messageId: string) => {
        await expect.poll(async () => (await one.messages(id, { direction: 'received' })).map((message) => message.messageId), { timeout: 20_000 }).toEqual([messageId]);
        expect((await getConversation(env.database().db, id)).at(-1)?.content).toBe(`Message ${messageId} from supervisor ${sender.id}: for ${messageId}`);
      };

      await one.sendMessage(sender.id, { to: later.id, body: 'for m-1', messageId: 'm-1' });
      await one.sendMessage(sender.id, { to: unstarted.id, body: 'for m-2', messageId: 'm-2' });
      await takenIn(later.id, 'm-1');
      await takenIn(unstarted.id, 'm-2');
      // Taken in (conversation and row), the state unchanged, and the driver told nothing before START.
      await sleep(100);
      expect(one.get(later.id)?.state).toBe('initializing');
      expect(heard.get(later.id)).toBeUndefined();
      expect(heard.get(unstarted.id)).toBeUndefined();

      await one.send(later.id, { type: 'START' });
      await expect.poll(() => heard.get(later.id)).toEqual(['started', 'message m-1']);

      // Interrupted before it started is not started either: held through RESUME (back to initializing) until START.
      const paused = await one.spawn({ name: 'paused before start', driver: 'recording', start: false });
      await one.send(paused.id, { type: 'INTERRUPT', reason: 'operator pause' });
      await one.sendMessage(sender.id, { to: paused.id, body: 'for m-3', messageId: 'm-3' });
      await takenIn(paused.id, 'm-3');
      await one.send(paused.id, { type: 'RESUME' });
      expect(one.get(paused.id)?.state).toBe('initializing');
      await sleep(100);
      expect(heard.get(paused.id)).toBeUndefined();
      await one.send(paused.id, { type: 'START' });
      await expect.poll(() => heard.get(paused.id)).toEqual(['started', 'message m-3']);

      const staged = await one.spawn({ name: 'held across restarts', driver: 'recording', start: false });
      await one.sendMessage(sender.id, { to: staged.id, body: 'for m-4', messageId: 'm-4' });
      await takenIn(staged.id, 'm-4');
      // A restart before START. Spawned with start: false it is held (it stays unstarted across restarts); without the
      // hold in its snapshot it stands for a spawn whose START never committed, which the restoration starts: its driver
      // hears the message after that, once.
      await one.shutdown({ closeDatabase: false, closeTransport: false });
      await sql`UPDATE supervisor_checkpoints SET snapshot = snapshot #- '{context,held}' WHERE supervisor_id = ${unstarted.id}`.execute(env.database().db);
      heard.clear();
      const two = await env.runtime({ daemonId: 'daemon-two', drivers: [recording] });
      await two.restoreAll();
      expect(two.get(unstarted.id)?.state).toBe('idle');
      await expect.poll(() => heard.get(unstarted.id)).toEqual(['restored', 'started', 'message m-2']);
      // The one that started heard its message already: nothing again.
      await expect.poll(() => heard.get(later.id)).toEqual(['restored']);
      // The held one stays unstarted and hears nothing; its START tells it the message taken in before the restart.
      expect(two.get(staged.id)?.state).toBe('initializing');
      expect(heard.get(staged.id)).toBeUndefined();
      await two.send(staged.id, { type: 'START' });
      await expect.poll(() => heard.get(staged.id)).toEqual(['started', 'message m-4']);

      // And after a second restart, neither hears a message again.
      await two.shutdown({ closeDatabase: false, closeTransport: false });
      heard.clear();
      const three = await env.runtime({ daemonId: 'daemon-three', drivers: [recording] });
      await three.restoreAll();
      await expect.poll(() => [heard.get(later.id), heard.get(unstarted.id)]).toEqual([['restored'], ['restored']]);
      await sleep(100);
      expect([heard.get(later.id), heard.get(unstarted.id)]).toEqual([['restored'], ['restored']]);
    });

    it('a message to a supervisor that finished before it arrived is recorded refused; one to an interrupted supervisor is kept', async () => {
      const { one, two } = await twoDaemons();
      const sender = await one.spawn({ name: 'planner' });
      const paused = await two.spawn({ name: 'paused' });
      await two.send(paused.id, { type: 'INTERRUPT', reason: 'operator pause' });
      await one.sendMessage(sender.id, { to: paused.id, body: 'When you are back: rebase first.' });
      await expect.poll(async () => (await two.messages(paused.id)).length, { timeout: 20_000 }).toBe(1);
      expect(two.get(paused.id)?.state).toBe('interrupted');

      const closing = await two.spawn({ name: 'closing' });
      // Sent while it runs; it finishes before the message is taken in (the owner's applier waits on its inbox row).
      await one.sendMessage(sender.id, { to: closing.id, body: 'Too late?' });
      await two.send(closing.id, { type: 'COMPLETE', summary: 'done' });
      await expect
        .poll(async () => (await sql<{ outcome: string | null }>`SELECT outcome FROM supervisor_inbox WHERE supervisor_id = ${closing.id}`.execute(env.database().db)).rows.map((row) => row.outcome), { timeout: 20_000 })
        .toEqual(expect.arrayContaining([expect.stringMatching(/^(refused|applied)$/)]));
      // Either it was taken in before COMPLETE (then it is in the conversation) or refused: never both, never lost silently.
      const taken = (await two.messages(closing.id)).length;
      const outcome = (await sql<{ outcome: string }>`SELECT outcome FROM supervisor_inbox WHERE supervisor_id = ${closing.id}`.execute(env.database().db)).rows[0]?.outcome;
      expect(outcome === 'applied' ? taken : 1 - taken).toBe(1);
    });
  });
}
