// The LLM driver against a stub OpenAI-compatible server (node:http on a free port, no network): what it sends, how
// the model's tool calls become committed events, what a restored supervisor hands the model, and how model errors end.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { daemonSettings } from '../../src/cli/config.js';
import { startDaemon } from '../../src/daemon/start-daemon.js';
import { InvalidSupervisorDataError } from '../../src/domain/errors.js';
import { getConversation, getSupervisorState, listSupervisors } from '../../src/persistence/supervisor-repository.js';
import type { AgentDriver } from '../../src/runtime/agent-driver.js';
import { createChatCompletionsClient, type ChatMessage } from '../../src/runtime/llm/chat-completions-client.js';
import { LlmHttpError, LlmMalformedResponseError, LlmRoundLimitError, LlmTimeoutError, LlmUnreachableError } from '../../src/runtime/llm/llm-errors.js';
import { createOpenAiDriver, type OpenAiDriverOptions } from '../../src/runtime/llm/openai-driver.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createInProcessBus } from '../../src/transport/in-process-bus.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { checkpointReasons, recordingLogger, useRuntimes } from './runtime-fixtures.js';
import { seedDataFolder } from '../helpers/pglite-template.js';

// ---------------------------------------------------------------- the stub server

interface ChatRequestBody {
  model: string;
  messages: Array<ChatMessage & { tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }>;
  tools: Array<{ type: string; function: { name: string } }>;
  tool_choice: string;
}

interface StubRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: ChatRequestBody;
}

/** `hang`: never answer (the client's timeout must end it). */
type StubReply = { status?: number; json?: unknown; raw?: string } | 'hang';

interface Stub {
  /** The API base, as SUPERVISOR_RUNTIME_LLM_BASE_URL would name it. */
  baseUrl: string;
  requests: StubRequest[];
  /** Replies in order; once they run out, the model ends its turn with a short text. */
  script(...replies: StubReply[]): void;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function startStub(): Promise<Stub> {
  const requests: StubRequest[] = [];
  const queue: StubReply[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({ path: request.url ?? '', headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody });
      const reply = queue.shift() ?? { json: say('Nothing to do until something arrives.') };
      if (reply === 'hang') return;
      response.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
      response.end(reply.raw ?? JSON.stringify(reply.json));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}/v1`, requests, script: (...replies) => queue.push(...replies) };
}

let callCounter = 0;
/** A completion whose message asks for these tool calls. */
function calls(...wanted: Array<[name: string, args: Record<string, unknown> | string]>): unknown {
  return {
    id: 'chatcmpl-stub',
    object: 'chat.completion',
    choices: [
      {
        index: 0,
        finish_reason: 'tool_calls',
        message: {
          role: 'assistant',
          content: null,
          tool_calls: wanted.map(([name, args]) => ({
            id: `call_${(callCounter += 1)}`,
            type: 'function',
            function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) },
          })),
        },
      },
    ],
  };
}

/** A completion that ends the model's turn with text. */
function say(content: string): unknown {
  return { id: 'chatcmpl-stub', object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] };
}

const contents = (request: StubRequest | undefined) => (request?.body.messages ?? []).map((message) => message.content).join('\n');
const toolResults = (request: StubRequest | undefined) =>
  (request?.body.messages ?? []).filter((message) => message.role === 'tool').map((message) => JSON.parse(message.content) as { ok: boolean; error?: string; result?: string });

function driverOn(stub: Stub, options: Partial<OpenAiDriverOptions> = {}): AgentDriver {
  return createOpenAiDriver({ baseUrl: stub.baseUrl, model: 'stub-model', apiKey: 'sk-stub', retryBaseDelayMs: 5, requestTimeoutMs: 5_000, ...options });
}

/** The driver, with every error its onStarted callback raised kept for the test (the runtime only logs them). */
function keepingErrors(driver: AgentDriver, errors: unknown[]): AgentDriver {
  return {
    ...driver,
    onStarted: async (supervisor) => {
      try {
        await driver.onStarted?.(supervisor);
      } catch (error) {
        errors.push(error);
        throw error;
      }
    },
  };
}

const deadline = { timeout: 15_000, interval: 20 };

// ---------------------------------------------------------------- with a runtime on a real database

for (const target of await databaseTargets()) {
  describe(`openai driver on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;
    const startRuntime = useRuntimes(database);

    it('the first request carries the model, the tools, the key and the conversation; its tool calls become committed events', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['set_phase', { phase: 'execution' }], ['spawn_task', { description: 'collect the figures' }], ['ask_question', { question: 'Which format?', choices: ['csv', 'json'] }]) });
      const runtime = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await runtime.spawn({ name: 'quarterly report', driver: 'openai' });

      await vi.waitFor(() => expect(stub.requests).toHaveLength(2), deadline);
      const [first, second] = stub.requests;
      expect(first?.path).toBe('/v1/chat/completions');
      expect(first?.headers.authorization).toBe('Bearer sk-stub');
      expect(first?.body).toMatchObject({ model: 'stub-model', tool_choice: 'auto' });
      expect(first?.body.tools.map((tool) => tool.function.name)).toEqual(['spawn_task', 'ask_question', 'set_phase', 'set_activity', 'send_message', 'complete', 'fail']);
      expect(first?.body.messages.map((message) => message.role)).toEqual(['system', 'user']);
      expect(first?.body.messages[0]?.content).toContain('"quarterly report"');
      // The stored conversation, then what just happened.
      expect(first?.body.messages[1]?.content).toMatch(/^\[runtime\] Supervisor "quarterly report" started in phase planning\.\n\n\[runtime\] You have just been started/);

      // The second request answers each tool call by its id, with what was applied.
      const assistant = second?.body.messages.find((message) => message.role === 'assistant');
      const ids = assistant?.tool_calls?.map((call) => call.id);
      expect(second?.body.messages.filter((message) => message.role === 'tool').map((message) => (message.role === 'tool' ? message.tool_call_id : null))).toEqual(ids);
      expect(toolResults(second).map((result) => result.ok)).toEqual([true, true, true]);

      const stored = await getSupervisorState(db(), supervisor.id);
      expect(stored).toMatchObject({ state: 'waiting_for_user', phase: 'execution', driver: 'openai' });
      expect(stored?.spawnedTaskIds).toHaveLength(1);
      expect(stored?.pendingQuestions).toMatchObject([{ question: 'Which format?', choices: ['csv', 'json'] }]);
      expect(await checkpointReasons(db(), supervisor.id)).toEqual(['created', 'started', 'phase_changed', 'task_spawned', 'question_asked']);
      expect(toolResults(second)[1]?.result).toBe(`task ${stored?.spawnedTaskIds[0]} spawned`);
    });

    it('send_message reaches another supervisor, whose model is handed the message in a turn of its own', async () => {
      const stub = await startStub();
      const transport = createInProcessBus({ subjectPrefix: 'llm-messages.', logger: { info: () => {}, warn: () => {}, error: () => {} } });
      await transport.start();
      const runtime = startRuntime({ drivers: [driverOn(stub)], transport, subjectPrefix: 'llm-messages.' });
      try {
        await runtime.start({ messaging: { embeddedWorker: false } });
        const receiver = await runtime.spawn({ name: 'builder', driver: 'manual' });
        // The receiver runs under the model only once the sender's message is on its way: its first turn is the message.
        stub.script({ json: calls(['send_message', { to: receiver.id, body: 'Please build the release branch.' }]) }, { json: say('Sent.') });
        const sender = await runtime.spawn({ name: 'planner', driver: 'openai' });
        await vi.waitFor(async () => expect(await runtime.messages(sender.id, { direction: 'sent' })).toHaveLength(1), deadline);
        await vi.waitFor(async () => expect(await runtime.messages(receiver.id, { direction: 'received' })).toHaveLength(1), deadline);
        const [message] = await runtime.messages(receiver.id);
        expect(message).toMatchObject({ peerId: sender.id, body: 'Please build the release branch.' });
        await vi.waitFor(() => expect(stub.requests.length).toBeGreaterThanOrEqual(2), deadline);
        expect(toolResults(stub.requests[1])[0]).toMatchObject({ ok: true, result: expect.stringMatching(new RegExp(`^message [0-9a-f-]{36} sent to supervisor ${receiver.id}$`)) });
        // An openai supervisor that receives one is handed it.
        const listener = await runtime.spawn({ name: 'listener', driver: 'openai' });
        await vi.waitFor(() => expect(stub.requests.length).toBeGreaterThanOrEqual(3), deadline);
        const before = stub.requests.length;
        await runtime.sendMessage(receiver.id, { to: listener.id, body: 'Status?' });
        await vi.waitFor(() => expect(stub.requests.length).toBeGreaterThan(before), deadline);
        expect(contents(stub.requests.at(-1))).toContain(`[runtime] Message`);
        expect(contents(stub.requests.at(-1))).toContain(`from supervisor ${receiver.id}: "Status?"`);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
        await transport.close();
      }
    });

    it('an answer and a task result go to the model with the conversation; a refused or invalid tool call comes back to it as the tool result', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['spawn_task', { description: 'collect the figures' }], ['ask_question', { question: 'Which format?', choices: ['csv', 'json'] }]) });
      const runtime = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await runtime.spawn({ name: 'quarterly report', driver: 'openai' });
      await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1), deadline);
      await vi.waitFor(() => expect(stub.requests).toHaveLength(2), deadline);
      const questionId = supervisor.snapshot.context.pendingQuestions[0]?.id ?? '';
      const taskId = supervisor.snapshot.context.tasks[0]?.id ?? '';

      // Completing with a task running is refused by the machine; the other two calls are wrong on their face.
      stub.script({ json: calls(['complete', { summary: 'done' }], ['ask_question', '{"choices": ["a"'], ['launch_rocket', {}]) });
      await runtime.answerQuestion(supervisor.id, questionId, 'csv');
      await vi.waitFor(() => expect(stub.requests).toHaveLength(4), deadline);
      const answered = stub.requests[2];
      expect(contents(answered)).toContain('Spawned task');
      expect(contents(answered)).toContain('Which format?');
      expect(contents(answered)).toContain('[human] csv');
      expect(contents(answered)).toContain('Your question "Which format?" was answered: "csv"');
      const results = toolResults(stub.requests[3]);
      expect(results.map((result) => result.ok)).toEqual([false, false, false]);
      expect(results[0]?.error).toBe(`refused: cannot complete while tasks are running (${taskId})`);
      expect(results[1]?.error).toMatch(/arguments of ask_question are not valid JSON/);
      expect(results[2]?.error).toMatch(/no tool named "launch_rocket"/);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'waiting_for_tasks' });

      stub.script({ json: calls(['complete', { summary: 'report written in csv' }]) });
      await runtime.reportTaskEvent(taskId, { type: 'completed', result: 'figures collected' });
      await vi.waitFor(async () => expect((await getSupervisorState(db(), supervisor.id))?.state).toBe('completed'), deadline);
      expect(contents(stub.requests[4])).toContain(`[task result] Task ${taskId} completed: figures collected`);
      expect(contents(stub.requests[4])).toContain(`Task ${taskId} (collect the figures) completed: figures collected`);
      // Completed: the driver does not ask the model again.
      expect(stub.requests).toHaveLength(5);
      expect((await getConversation(db(), supervisor.id)).at(-1)?.content).toBe('Supervisor "quarterly report" completed: report written in csv');
    });

    it('after a restore in another runtime, the next request holds the restoration context message and the prior conversation', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['set_phase', { phase: 'drafting' }], ['spawn_task', { description: 'draft chapter one' }]) });
      const first = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await first.spawn({ name: 'book', driver: 'openai' });
      await vi.waitFor(() => expect(stub.requests).toHaveLength(2), deadline);
      await vi.waitFor(() => expect(supervisor.state).toBe('waiting_for_tasks'), deadline);
      await first.shutdown({ closeDatabase: false });

      // A new driver with no memory: everything it sends comes from the database.
      stub.script({ json: calls(['set_activity', { activity: 'waiting for chapter one', progress: 40 }]) });
      const second = startRuntime({ drivers: [driverOn(stub)] });
      const summary = await second.restoreAll();
      expect(summary).toMatchObject({ restored: 1, failed: [] });
      await vi.waitFor(() => expect(stub.requests).toHaveLength(4), deadline);

      const notice = (await getConversation(db(), supervisor.id)).find((entry) => entry.content.startsWith('[Restoration notice]'));
      expect(notice?.content).toBe(summary.results[0]?.contextMessage);
      const restored = stub.requests[2];
      expect(contents(restored)).toContain(`[runtime] ${notice?.content}`);
      expect(contents(restored)).toContain('Supervisor "book" started in phase planning.');
      expect(contents(restored)).toContain('Phase changed from planning to drafting.');
      expect(contents(restored)).toMatch(/Spawned task [0-9a-f-]{36}: draft chapter one/);
      expect(restored?.body.messages[0]?.content).toContain('Running tasks:\n- ');
      await vi.waitFor(async () => expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ currentActivity: 'waiting for chapter one', progress: 40 }), deadline);
    });

    it('a daemon without the LLM driver restores an openai supervisor undriven and keeps its driver; one with it drives it again, answer included', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['ask_question', { question: 'Publish today?', choices: ['yes', 'no'] }]) });
      const first = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await first.spawn({ name: 'newsletter', driver: 'openai' });
      await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1), deadline);
      await vi.waitFor(() => expect(stub.requests).toHaveLength(2), deadline);
      const questionId = supervisor.snapshot.context.pendingQuestions[0]?.id ?? '';
      await first.shutdown({ closeDatabase: false });

      const logger = recordingLogger();
      const without = startRuntime({ logger });
      expect(await without.restoreAll()).toMatchObject({ restored: 1, failed: [] });
      expect(logger.entries.some((entry) => entry.level === 'warn' && /agent driver openai is not configured in this daemon/.test(entry.message ?? ''))).toBe(true);
      await without.answerQuestion(supervisor.id, questionId, 'yes');
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'working', driver: 'openai' });
      await without.shutdown({ closeDatabase: false });
      // Nothing asked the model while no daemon had the driver.
      expect(stub.requests).toHaveLength(2);

      stub.script({ json: calls(['complete', { summary: 'published' }]) });
      const again = startRuntime({ drivers: [driverOn(stub)] });
      await again.restoreAll();
      await vi.waitFor(async () => expect((await getSupervisorState(db(), supervisor.id))?.state).toBe('completed'), deadline);
      expect(contents(stub.requests[2])).toContain('[human] yes');
      expect(contents(stub.requests[2])).toContain('Publish today?');
    });

    it('HTTP 500 and 503 are retried with backoff, and the reply that follows is applied', async () => {
      const stub = await startStub();
      stub.script({ status: 500, json: { error: 'overloaded' } }, { status: 503, raw: 'try later' }, { json: calls(['set_phase', { phase: 'execution' }]) });
      const logger = recordingLogger();
      const runtime = startRuntime({ drivers: [driverOn(stub, { logger })] });
      const supervisor = await runtime.spawn({ name: 'retried', driver: 'openai' });

      await vi.waitFor(async () => expect((await getSupervisorState(db(), supervisor.id))?.phase).toBe('execution'), deadline);
      await vi.waitFor(() => expect(stub.requests).toHaveLength(4), deadline);
      const retries = logger.entries.filter((entry) => entry.message === 'model request failed; retrying');
      expect(retries.map((entry) => (entry.data as { retry: number }).retry)).toEqual([1, 2]);
      expect(JSON.stringify(retries[0]?.data)).toContain('HTTP 500');
    });

    it('a malformed reply is a typed error, logged; the supervisor is left as it was and takes events', async () => {
      const stub = await startStub();
      stub.script({ raw: 'this is not json' });
      const errors: unknown[] = [];
      const logger = recordingLogger();
      const runtime = startRuntime({ logger, drivers: [keepingErrors(driverOn(stub), errors)] });
      const supervisor = await runtime.spawn({ name: 'garbled', driver: 'openai' });

      await vi.waitFor(() => expect(errors).toHaveLength(1), deadline);
      expect(errors[0]).toBeInstanceOf(LlmMalformedResponseError);
      expect((errors[0] as Error).message).toMatch(/not an OpenAI chat completion \(the body is not JSON: "this is not json"\)/);
      expect((errors[0] as Error).message).toContain(`supervisor-runtime resume ${supervisor.id}`);
      // Not retried: the same request would get the same answer.
      expect(stub.requests).toHaveLength(1);
      await vi.waitFor(() => expect(logger.entries.some((entry) => entry.message === 'agent driver failed')).toBe(true), deadline);

      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'idle', phase: 'planning', spawnedTaskIds: [], pendingQuestions: [] });
      expect(await checkpointReasons(db(), supervisor.id)).toEqual(['created', 'started']);
      await runtime.send(supervisor.id, { type: 'SET_PHASE', phase: 'by hand' });
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ phase: 'by hand' });
    });

    it('a model that never ends its turn is stopped after the round limit with a typed error; what it did is committed', async () => {
      const stub = await startStub();
      stub.script(...[1, 2, 3].map((n) => ({ json: calls(['set_activity', { activity: `step ${n}`, progress: n }]) })));
      const errors: unknown[] = [];
      const runtime = startRuntime({ drivers: [keepingErrors(driverOn(stub, { maxRounds: 3 }), errors)] });
      const supervisor = await runtime.spawn({ name: 'chatty', driver: 'openai' });

      await vi.waitFor(() => expect(errors).toHaveLength(1), deadline);
      expect(errors[0]).toBeInstanceOf(LlmRoundLimitError);
      expect((errors[0] as Error).message).toMatch(/still calling tools after 3 rounds.*SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS/);
      expect(stub.requests).toHaveLength(3);
      expect(await getSupervisorState(db(), supervisor.id)).toMatchObject({ state: 'working', currentActivity: 'step 3', progress: 3 });
    });

    /** A runtime with messaging on the in-process bus (no task worker), so supervisors can message each other. */
    async function withMessaging(prefix: string, drivers: AgentDriver[]) {
      const transport = createInProcessBus({ subjectPrefix: prefix, logger: { info: () => {}, warn: () => {}, error: () => {} } });
      await transport.start();
      const runtime = startRuntime({ drivers, transport, subjectPrefix: prefix });
      await runtime.start({ messaging: { embeddedWorker: false } });
      return { runtime, transport };
    }

    /** Waits until no request has come in for `quietMs`, so every turn the steps so far caused has been asked; the count. */
    async function settled(stub: Stub, quietMs = 400): Promise<number> {
      let seen = -1;
      while (seen !== stub.requests.length) {
        seen = stub.requests.length;
        await new Promise((resolve) => setTimeout(resolve, quietMs));
      }
      return seen;
    }

    /** The text of a request's last message: what its turn is about. */
    const trigger = (request: StubRequest | undefined) => request?.body.messages.at(-1)?.content ?? '';
    const RESUMED_TURN = /You were interrupted \(operator pause\) and are running again\. While you were interrupted, this arrived/;

    it('a RESUME event gives the model one turn for the answer and the message taken in while it was interrupted, once', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['ask_question', { question: 'Which region?', choices: ['eu', 'us'] }]) });
      const { runtime, transport } = await withMessaging('llm-resume-event.', [driverOn(stub)]);
      let supervisorId = '';
      try {
        const peer = await runtime.spawn({ name: 'peer', driver: 'manual' });
        const supervisor = await runtime.spawn({ name: 'deployer', driver: 'openai' });
        supervisorId = supervisor.id;
        await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1), deadline);
        const questionId = supervisor.snapshot.context.pendingQuestions[0]?.id ?? '';
        expect(await settled(stub)).toBe(2);

        await runtime.send(supervisor.id, { type: 'INTERRUPT', reason: 'operator pause' });
        await runtime.answerQuestion(supervisor.id, questionId, 'eu');
        await runtime.sendMessage(peer.id, { to: supervisor.id, body: 'The eu cluster is ready.' });
        await vi.waitFor(async () => expect(await runtime.messages(supervisor.id, { direction: 'received' })).toHaveLength(1), deadline);
        // Interrupted: the driver heard both, and asked the model nothing.
        expect(await settled(stub)).toBe(2);

        stub.script({ json: calls(['set_phase', { phase: 'deploying to eu' }]) });
        await runtime.send(supervisor.id, { type: 'RESUME' });
        await vi.waitFor(async () => expect((await getSupervisorState(db(), supervisor.id))?.phase).toBe('deploying to eu'), deadline);
        // One turn (its request and the one answering its tool call) carries both; no turn follows for either alone.
        expect(await settled(stub)).toBe(4);
        const resumed = stub.requests[2];
        expect(contents(resumed)).toContain('[human] eu');
        expect(trigger(resumed)).toMatch(RESUMED_TURN);
        expect(trigger(resumed)).toContain('\n- [human] eu\n');
        expect(trigger(resumed)).toContain(`\n- [human] Message `);
        expect(trigger(resumed)).toContain(`from supervisor ${peer.id}: The eu cluster is ready.\n`);
        expect(resumed?.body.messages[0]?.content).toContain('Status now: state working');

        // Interrupted and resumed again with nothing new: the model is not asked again.
        await runtime.send(supervisor.id, { type: 'INTERRUPT', reason: 'operator pause' });
        await runtime.send(supervisor.id, { type: 'RESUME' });
        expect(await settled(stub)).toBe(4);
      } finally {
        await runtime.shutdown({ closeDatabase: false });
        await transport.close();
      }

      // Restored by another daemon (with its manual peer): the restoration's own turn, which does not announce them again.
      const again = startRuntime({ drivers: [driverOn(stub)] });
      expect(await again.restoreAll()).toMatchObject({ restored: 2, failed: [] });
      expect(await settled(stub)).toBe(5);
      expect(trigger(stub.requests[4])).toMatch(/You were just restored/);
      expect(trigger(stub.requests[4])).not.toMatch(/While you were interrupted/);
      expect((await getSupervisorState(db(), supervisorId))?.state).toBe('working');
    });

    it('runtime.resume (POST /supervisors/:id/resume) gives one turn, its restoration\'s, with the answer taken in while interrupted', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['ask_question', { question: 'Which region?', choices: ['eu', 'us'] }]) });
      const runtime = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await runtime.spawn({ name: 'deployer', driver: 'openai' });
      await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1), deadline);
      const questionId = supervisor.snapshot.context.pendingQuestions[0]?.id ?? '';
      expect(await settled(stub)).toBe(2);
      await runtime.send(supervisor.id, { type: 'INTERRUPT', reason: 'operator pause' });
      await runtime.answerQuestion(supervisor.id, questionId, 'eu');
      expect(await settled(stub)).toBe(2);

      expect(await runtime.resume(supervisor.id)).toMatchObject({ restoredState: 'working' });
      expect(await settled(stub)).toBe(3);
      expect(contents(stub.requests[2])).toContain('[human] eu');
      expect(trigger(stub.requests[2])).toMatch(/You were just restored/);
    });

    it('a daemon that stops while its supervisor is interrupted: the restore that resumes it gives one turn with what arrived; a later restore only its own', async () => {
      const stub = await startStub();
      stub.script({ json: calls(['ask_question', { question: 'Which region?', choices: ['eu', 'us'] }]) });
      const first = startRuntime({ drivers: [driverOn(stub)] });
      const supervisor = await first.spawn({ name: 'deployer', driver: 'openai' });
      await vi.waitFor(() => expect(supervisor.snapshot.context.pendingQuestions).toHaveLength(1), deadline);
      const questionId = supervisor.snapshot.context.pendingQuestions[0]?.id ?? '';
      expect(await settled(stub)).toBe(2);
      await first.send(supervisor.id, { type: 'INTERRUPT', reason: 'operator pause' });
      await first.answerQuestion(supervisor.id, questionId, 'eu');
      expect(await settled(stub)).toBe(2);
      await first.shutdown({ closeDatabase: false });

      const second = startRuntime({ drivers: [driverOn(stub)] });
      expect(await second.restoreAll()).toMatchObject({ restored: 1, failed: [] });
      expect(await settled(stub)).toBe(3);
      expect(contents(stub.requests[2])).toContain('[human] eu');
      expect(trigger(stub.requests[2])).toMatch(/You were just restored/);
      await second.shutdown({ closeDatabase: false });

      const third = startRuntime({ drivers: [driverOn(stub)] });
      expect(await third.restoreAll()).toMatchObject({ restored: 1, failed: [] });
      expect(await settled(stub)).toBe(4);
      expect(trigger(stub.requests[3])).toMatch(/You were just restored/);
    });

    it('a fork of an interrupted checkpoint, made unstarted in another daemon and then sent RESUME, gets one turn for what its source took in while interrupted', async () => {
      const stub = await startStub();
      const first = startRuntime({ drivers: [driverOn(stub)] });
      const source = await first.spawn({ name: 'deployer', driver: 'manual' });
      const { questionId } = await first.askQuestion(source.id, { question: 'Which region?' });
      await first.send(source.id, { type: 'INTERRUPT', reason: 'operator pause' });
      await first.answerQuestion(source.id, questionId, 'eu');
      await first.shutdown({ closeDatabase: false });

      // This daemon never saw the interruption: where it began is in the checkpoint the fork is made from.
      const second = startRuntime({ drivers: [driverOn(stub)] });
      const { supervisor: fork } = await second.fork(source.id, { driver: 'openai', start: false });
      expect(fork.state).toBe('interrupted');
      expect(await settled(stub)).toBe(0);
      await second.send(fork.id, { type: 'RESUME' });
      expect(await settled(stub)).toBe(1);
      expect(trigger(stub.requests[0])).toMatch(RESUMED_TURN);
      expect(trigger(stub.requests[0])).toContain('\n- [human] eu\n');
      expect(trigger(stub.requests[0])).toContain(`\n- [runtime] [fork]`);
    });

    it('spawning with driver openai where it is not configured is refused, naming the settings to give', async () => {
      const runtime = startRuntime();
      const spawning = runtime.spawn({ name: 'no model', driver: 'openai' });
      await expect(spawning).rejects.toBeInstanceOf(InvalidSupervisorDataError);
      await expect(spawning).rejects.toThrow(/"openai" is not configured in this daemon.*SUPERVISOR_RUNTIME_LLM_BASE_URL and SUPERVISOR_RUNTIME_LLM_MODEL/);
      expect((await listSupervisors(db())).supervisors).toEqual([]);
    });
  });
}

// ---------------------------------------------------------------- the HTTP client alone

describe('chat-completions client', () => {
  const messages: ChatMessage[] = [{ role: 'user', content: 'hello' }];

  it('a refused key (401) is not retried, and its error says which setting to fix', async () => {
    const stub = await startStub();
    stub.script({ status: 401, json: { error: { message: 'invalid api key' } } });
    const client = createChatCompletionsClient({ baseUrl: stub.baseUrl, model: 'm', apiKey: 'wrong', retryBaseDelayMs: 5 });
    const error = await client.complete(messages, [], 'sup-1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LlmHttpError);
    expect(error).toMatchObject({ status: 401, retryable: false, supervisorId: 'sup-1' });
    expect((error as Error).message).toMatch(/HTTP 401: \{"error":\{"message":"invalid api key"\}\}\. The server refused the API key: set SUPERVISOR_RUNTIME_LLM_API_KEY/);
    expect(stub.requests).toHaveLength(1);
  });

  it('a server that does not answer within the request timeout is retried, then gives a timeout error', async () => {
    const stub = await startStub();
    stub.script('hang', 'hang');
    const client = createChatCompletionsClient({ baseUrl: stub.baseUrl, model: 'm', requestTimeoutMs: 200, maxRetries: 1, retryBaseDelayMs: 5 });
    const error = await client.complete(messages, [], 'sup-2').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LlmTimeoutError);
    expect((error as Error).message).toMatch(/did not answer within 200 ms.*SUPERVISOR_RUNTIME_LLM_TIMEOUT_MS/);
    expect(stub.requests).toHaveLength(2);
  });

  it('no server at the base URL gives an unreachable error that names the URL to check', async () => {
    const stub = await startStub();
    const gone = servers.pop();
    await new Promise((resolve) => gone?.close(resolve));
    const client = createChatCompletionsClient({ baseUrl: stub.baseUrl, model: 'm', maxRetries: 2, retryBaseDelayMs: 5 });
    const error = await client.complete(messages, [], 'sup-3').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LlmUnreachableError);
    expect((error as Error).message).toContain(`Could not reach the model server at ${stub.baseUrl}/chat/completions`);
    expect((error as Error).message).toContain('ECONNREFUSED');
  });

  it('accepts the small ways servers differ: arguments as an object, no call id, content null', async () => {
    const stub = await startStub();
    stub.script({ json: { choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'set_phase', arguments: { phase: 'x' } } }] } }] } });
    const client = createChatCompletionsClient({ baseUrl: `${stub.baseUrl}/`, model: 'm' });
    expect(await client.complete(messages, [], 'sup-4')).toEqual({
      content: '',
      finishReason: null,
      toolCalls: [{ id: 'call_0', type: 'function', function: { name: 'set_phase', arguments: '{"phase":"x"}' } }],
    });
    expect(stub.requests[0]?.path).toBe('/v1/chat/completions');
    expect(stub.requests[0]?.headers.authorization).toBeUndefined();
  });
});

// ---------------------------------------------------------------- the daemon

describe('daemon with LLM settings', () => {
  it('offers driver openai, pointed at the configured server and model', async () => {
    const stub = await startStub();
    stub.script({ json: calls(['set_phase', { phase: 'execution' }]) });
    const dataDir = mkdtempSync(join(tmpdir(), 'sr-llm-'));
    // Not what is tested here: the cluster initdb would make on an empty folder, from the template (seconds less).
    await seedDataFolder(dataDir);
    const settings = daemonSettings(
      { SUPERVISOR_RUNTIME_LLM_API_KEY: 'sk-daemon', SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false', SUPERVISOR_RUNTIME_DAEMON_ID: `llm-${process.pid}` },
      { dataDir, port: '0', logLevel: 'silent', llmBaseUrl: stub.baseUrl, llmModel: 'served-model' },
    );
    const daemon = await startDaemon(settings, { logger: silentLogger });
    try {
      const response = await fetch(`${daemon.url}/supervisors`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'via http', driver: 'openai' }) });
      expect(response.status).toBe(201);
      const { id } = (await response.json()) as { id: string };
      await vi.waitFor(async () => expect((await daemon.runtime.describe(id)).phase).toBe('execution'), deadline);
      expect(stub.requests[0]?.body.model).toBe('served-model');
      expect(stub.requests[0]?.headers.authorization).toBe('Bearer sk-daemon');
    } finally {
      await daemon.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
