// The client commands against a real daemon process, on every database: the built binary in the first test and for
// --watch and --help, and the rest through runCli in this process (what the binary calls, minus its start-up).

import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import type { SupervisorView } from '../../src/api/views.js';
import { createRuntime, type SupervisorRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';
import { freePort, useDaemon } from '../helpers/daemon.js';
import { spawn } from 'node:child_process';
import { BIN, runBin, runCliHere } from '../helpers/processes.js';

const TOKEN = `cli-${randomUUID()}`;
const targets = await databaseTargets();

for (const target of targets) {
  describe(`supervisor-runtime client commands against a daemon on ${target.name}`, () => {
    const daemon = useDaemon(target, 'sr_cli', { env: { SUPERVISOR_RUNTIME_TOKEN: TOKEN } });
    let env: Record<string, string>;
    beforeAll(() => {
      env = { SUPERVISOR_RUNTIME_URL: daemon.url, SUPERVISOR_RUNTIME_TOKEN: TOKEN };
    });

    async function ask(supervisorId: string, question: string, choices: string[]): Promise<string> {
      const response = await fetch(`${daemon.url}/supervisors/${supervisorId}/questions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ question, choices }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { questionId: string }).questionId;
    }

    it('spawn creates and starts a supervisor, then status lists it in a table with its name and state', async () => {
      const spawned = await runBin(['spawn', 'Release', 'notes', '--phase', 'drafting'], env);
      expect(spawned.stderr).toBe('');
      expect(spawned.code).toBe(0);
      expect(spawned.stdout).toMatch(/^Spawned supervisor [0-9a-f-]{36} \(Release notes\): state idle, phase drafting, driver manual\.$/m);

      const status = await runBin(['status'], env);
      expect(status.code).toBe(0);
      const [header, ...lines] = status.stdout.trimEnd().split('\n');
      expect(header).toMatch(/^ID\s+NAME\s+STATE\s+PHASE\s+PROGRESS\s+QUESTIONS\s+OWNER\s+ACTIVITY$/);
      expect(lines.find((line) => line.includes('Release notes'))).toMatch(/Release notes\s+idle\s+drafting\s+0%\s+0/);
    });

    it('status <id> shows one supervisor in detail, with its pending questions; questions lists them across supervisors', async () => {
      const json = await runCliHere(['spawn', 'Planner', '--json'], env);
      const supervisor = JSON.parse(json.stdout) as SupervisorView;
      const questionId = await ask(supervisor.id, 'Which rollout?', ['canary', 'big bang']);

      const detail = await runCliHere(['status', supervisor.id], env);
      expect(detail.code).toBe(0);
      expect(detail.stdout).toMatch(new RegExp(`^Supervisor\\s+${supervisor.id}$`, 'm'));
      expect(detail.stdout).toMatch(/^State\s+waiting_for_user \(running in the daemon\)$/m);
      expect(detail.stdout).toMatch(/^Owner\s+\S+ \(epoch 1\)$/m);
      expect(detail.stdout).toMatch(/^Pending questions \(1\):$/m);
      expect(detail.stdout).toContain(`${questionId}  Which rollout?`);
      expect(detail.stdout).toContain('choices: canary | big bang');

      const questions = await runCliHere(['questions'], env);
      expect(questions.code).toBe(0);
      expect(questions.stdout).toMatch(/^SUPERVISOR\s+NAME\s+QUESTION ID\s+QUESTION\s+CHOICES$/m);
      expect(questions.stdout).toMatch(new RegExp(`${supervisor.id}\\s+Planner\\s+${questionId}\\s+Which rollout\\?\\s+canary \\| big bang`));
    });

    it('answer answers a pending question (the words joined); a second answer fails with the first, exit 1', async () => {
      const supervisor = JSON.parse((await runCliHere(['spawn', 'Answerer', '--json'], env)).stdout) as SupervisorView;
      const questionId = await ask(supervisor.id, 'Rollout?', ['big bang', 'canary']);
      const answered = await runCliHere(['answer', supervisor.id, questionId, 'big', 'bang'], env);
      expect(answered.stderr).toBe('');
      expect(answered.code).toBe(0);
      expect(answered.stdout).toContain(`Answered question ${questionId} of Answerer (${supervisor.id}) with "big bang"; it is now working.`);
      const second = await runCliHere(['answer', supervisor.id, questionId, 'canary'], env);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/was already answered with "big bang" at .*; the first answer wins\./);
      const none = await runCliHere(['questions'], env);
      expect(none.stdout).not.toContain(questionId);
    });

    it('a whole flow from the command line: ask with choices, answer, spawn a task with event, read tasks, checkpoints and conversation, withdraw, complete', async () => {
      // About twenty commands, one after another, each through runCli as the binary runs it (the first test runs the binary).
      const supervisor = JSON.parse((await runCliHere(['spawn', 'Flow', '--json'], env)).stdout) as SupervisorView;
      const asked = await runCliHere(['ask', supervisor.id, 'Which', 'rollout?', '--choice', 'canary', '--choice', 'big bang', '--context', 'prod'], env);
      expect(asked.stderr).toBe('');
      expect(asked.code).toBe(0);
      const questionId = /question (\S+); it is now waiting_for_user/.exec(asked.stdout)?.[1];
      expect(questionId).toBeDefined();
      expect(asked.stdout).toContain(`supervisor-runtime answer ${supervisor.id} ${questionId} <one of "canary", "big bang">`);
      const answered = await runCliHere(['answer', supervisor.id, questionId!, 'canary', '--json'], env);
      expect((JSON.parse(answered.stdout) as SupervisorView).state).toBe('working');

      const spawnedTask = await runCliHere(['event', supervisor.id, 'spawn_task', '{"taskId":"cli-task","description":"roll out to 5 %"}'], env);
      expect(spawnedTask.code).toBe(0);
      expect(spawnedTask.stdout).toMatch(/^SPAWN_TASK applied to Flow \(.+\): it is now waiting_for_tasks, phase planning, step \d+\.$/m);
      const tasks = await runCliHere(['tasks', supervisor.id], env);
      expect(tasks.stdout).toMatch(/^TASK\s+STATUS\s+PROGRESS\s+DESCRIPTION\s+RESULT \/ ERROR$/m);
      expect(tasks.stdout).toMatch(/^cli-task\s+running\s+0%\s+roll out to 5 %$/m);
      const tasksJson = JSON.parse((await runCliHere(['tasks', supervisor.id, '--json'], env)).stdout) as { tasks: Array<{ id: string }> };
      expect(tasksJson.tasks.map((task) => task.id)).toEqual(['cli-task']);

      const second = /question (\S+);/.exec((await runCliHere(['ask', supervisor.id, 'Anything', 'else?'], env)).stdout)?.[1];
      const withdrawn = await runCliHere(['withdraw', supervisor.id, second!, 'not', 'needed'], env);
      expect(withdrawn.stdout).toMatch(/^Withdrew question \S+ of Flow \(.+\); it is now waiting_for_tasks\.$/m);

      const checkpoints = await runCliHere(['checkpoints', supervisor.id, '--limit', '3'], env);
      expect(checkpoints.stdout).toMatch(/^SEQ\s+STEP\s+REASON\s+STATE\s+AT$/m);
      expect(checkpoints.stdout.trimEnd().split('\n')).toHaveLength(4);
      expect(checkpoints.stdout).toMatch(/question_withdrawn\s+waiting_for_tasks/);
      const conversation = await runCliHere(['conversation', supervisor.id], env);
      expect(conversation.stdout).toMatch(/^#\d+ \S+ user: canary$/m);
      expect(conversation.stdout).toContain('was withdrawn: not needed');

      // Bad input is refused in the CLI's own words, before anything is sent.
      const badJson = await runCliHere(['event', supervisor.id, 'SET_PHASE', '{phase: x}'], env);
      expect(badJson.code).toBe(2);
      expect(badJson.stderr).toMatch(/The fields are not JSON/);
      expect((await runCliHere(['checkpoints', supervisor.id, '--limit', 'lots'], env)).stderr).toMatch(/--limit must be a whole number from 1 to 9999/);
      expect((await runCliHere(['ask', supervisor.id], env)).code).toBe(2);

      await fetch(`${daemon.url}/tasks/cli-task/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ type: 'completed', result: 'ok' }) });
      const completed = await runCliHere(['event', supervisor.id, 'COMPLETE', '{"summary":"rolled out"}'], env);
      expect(completed.stdout).toMatch(/it is now completed/);
    });

    it('status --watch prints again when the supervisor changes, and exits 0 on SIGINT', async () => {
      const supervisor = JSON.parse((await runCliHere(['spawn', 'Watched', '--json'], env)).stdout) as SupervisorView;
      const child = spawn(process.execPath, [BIN, 'status', supervisor.id, '--watch', '--every', '0.2'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await vi.waitFor(() => expect(stdout).toMatch(/^Phase\s+planning$/m), { timeout: 20_000, interval: 50 });
        await fetch(`${daemon.url}/supervisors/${supervisor.id}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ type: 'SET_PHASE', phase: 'watching' }),
        });
        await vi.waitFor(() => expect(stdout).toMatch(/^Phase\s+watching$/m), { timeout: 20_000, interval: 50 });
        // A print per change, each under its time (a heartbeat in between may add one more), never one per poll.
        const prints = stdout.match(/^--- \d{4}-\d\d-\d\dT/gm)?.length ?? 0;
        expect(prints).toBeGreaterThanOrEqual(2);
        expect(prints).toBeLessThanOrEqual(3);
      } finally {
        child.kill('SIGINT');
      }
      expect(await exited, stderr).toBe(0);
    });

    it("prints the daemon's message and exits 1 for an unknown supervisor, a refused event and a missing token", async () => {
      const unknown = await runCliHere(['status', '00000000-0000-4000-8000-000000000000'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/Supervisor 00000000-0000-4000-8000-000000000000 does not exist/);
      const badDriver = await runCliHere(['spawn', 'x', '--driver', 'gpt-9'], env);
      expect(badDriver.code).toBe(1);
      expect(badDriver.stderr).toBe('Unknown agent driver "gpt-9": this daemon has manual, scripted. Nothing was written; use one of those, or leave the driver out for the default.\n');
      // Refusals in the CLI's words: an argument, a JSON field, a flag, never the HTTP request's `params.id`.
      const badId = await runCliHere(['status', 'not-a-uuid'], env);
      expect(badId.code).toBe(1);
      expect(badId.stderr).toMatch(/the supervisor id must be a UUID like 11111111-1111-4111-8111-111111111111/);
      expect(badId.stderr).not.toMatch(/params\./);
      const supervisor = JSON.parse((await runCliHere(['spawn', 'Words', '--json'], env)).stdout) as SupervisorView;
      const badTask = await runCliHere(['event', supervisor.id, 'SPAWN_TASK', '{"taskId":"a b","description":"x"}'], env);
      expect(badTask.code).toBe(1);
      expect(badTask.stderr).toMatch(/the field "taskId" must be letters, digits, _ and - only/);
      expect(badTask.stderr).not.toMatch(/body\./);
      const noToken = await runCliHere(['status'], { ...env, SUPERVISOR_RUNTIME_TOKEN: '' });
      expect(noToken.code).toBe(1);
      expect(noToken.stderr).toMatch(/Missing or wrong bearer token/);
    });
  });
}

for (const target of targets) {
  // The daemon in this process, so a test can lay rows under it or slow a reply down.
  describe(`supervisor-runtime client commands against an in-process server on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    let runtime: SupervisorRuntime;
    let app: FastifyInstance;
    let env: Record<string, string>;
    beforeEach(async () => {
      runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      app = await createApiServer(runtime);
      await app.listen({ host: '127.0.0.1', port: 0 });
      env = { SUPERVISOR_RUNTIME_URL: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, SUPERVISOR_RUNTIME_TOKEN: '' };
    });
    afterEach(async () => {
      await app?.close();
      await runtime?.shutdown({ closeDatabase: false });
    });

    it('conversation prints every entry of a long conversation (2 500, more than one page), in order, the newest included', async () => {
      const supervisor = await runtime.spawn({ name: 'talker' });
      await sql`INSERT INTO supervisor_conversation (supervisor_id, seq, role, content)
        SELECT ${supervisor.id}::uuid, g, 'assistant', 'message ' || g FROM generate_series(100, 2599) g`.execute(database().db);
      const printed = await runCliHere(['conversation', supervisor.id], env);
      expect(printed.code, printed.stderr).toBe(0);
      const seqs = printed.stdout.trimEnd().split('\n').map((line) => Number(/^#(\d+) /.exec(line)?.[1]));
      expect(seqs.slice(-2500)).toEqual(Array.from({ length: 2500 }, (_, i) => 100 + i));
      expect(printed.stdout).toMatch(/assistant: message 2599\n$/);
      const json = JSON.parse((await runCliHere(['conversation', supervisor.id, '--json'], env)).stdout) as { entries: unknown[] };
      expect(json.entries).toHaveLength(seqs.length);
    });

    it('refusals name the command to run, never the HTTP route (which HTTP clients still get), and a finished supervisor no daemon runs names the event it refused', async () => {
      const noRoute = /\b(GET|POST) \//;
      const unknown = '00000000-0000-4000-8000-000000000000';
      const resumed = await runCliHere(['resume', unknown], env);
      expect(resumed.code).toBe(1);
      expect(resumed.stderr).toContain(
        `Supervisor ${unknown} does not exist. Check the id with \`supervisor-runtime status\` or create one with \`supervisor-runtime spawn <name>\`, ` +
          `or start a fresh one under this id with \`supervisor-runtime resume ${unknown} --start-fresh-if-missing\`.`,
      );
      // Elsewhere in the same process a finished supervisor is laid down and left: nobody here runs it.
      const elsewhere = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const done = await elsewhere.spawn({ name: 'finished' });
      await elsewhere.send(done.id, { type: 'COMPLETE', summary: 'shipped' });
      await elsewhere.shutdown({ closeDatabase: false });
      const forked = await runCliHere(['fork', done.id], env);
      expect(forked.code).toBe(1);
      expect(forked.stderr).toMatch(new RegExp(`Cannot fork supervisor ${done.id} from checkpoint \\d+: .*fork from another checkpoint \\(\`supervisor-runtime checkpoints ${done.id}\` lists them\\)`));
      const missingCheckpoint = await runCliHere(['fork', done.id, '--checkpoint', '999'], env);
      expect(missingCheckpoint.stderr).toContain(`List the stored ones with \`supervisor-runtime checkpoints ${done.id}\` and fork from one of those.`);
      const restored = await runCliHere(['event', done.id, 'RESTORED'], env);
      expect(restored.code).toBe(1);
      expect(restored.stderr).toContain(`RESTORED cannot be sent from outside: only the restoration protocol restores (\`supervisor-runtime resume ${done.id}\`)`);
      const asked = await runCliHere(['ask', done.id, 'x?'], env);
      expect(asked.code).toBe(1);
      expect(asked.stderr).toBe(`Supervisor ${done.id} refused ASK_QUESTION in state completed: supervisor is completed and accepts no more events\n`);
      for (const refusal of [resumed, forked, missingCheckpoint, restored, asked]) expect(refusal.stderr).not.toMatch(noRoute);
      // Over HTTP the same refusal names the route, for an HTTP client.
      const overHttp = await fetch(`${env.SUPERVISOR_RUNTIME_URL}/supervisors/${unknown}/resume`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(((await overHttp.json()) as { message: string }).message).toMatch(/create it with POST \/supervisors\./);
    });

    it('spawn names what the user gave: an --idempotency-key used for another spawn, an unknown --driver; never an id it made up', async () => {
      const first = await runCliHere(['spawn', 'k1', '--idempotency-key', 'K'], env);
      expect(first.code, first.stderr).toBe(0);
      const id = /^Spawned supervisor (\S+) /.exec(first.stdout)?.[1];
      expect((await runCliHere(['spawn', 'k1', '--idempotency-key', 'K'], env)).stdout).toBe(first.stdout);
      const reused = await runCliHere(['spawn', 'k2', '--idempotency-key', 'K'], env);
      expect(reused.code).toBe(1);
      expect(reused.stderr).toBe(
        `Refusing the spawn: --idempotency-key "K" was already used for a different spawn (it made supervisor ${id}, "k1"). ` +
          'Nothing was written; use a new key for a new spawn (a key replays only the spawn it first made).\n',
      );
      const unknownDriver = await runCliHere(['spawn', 'x', '--driver', 'nope'], env);
      expect(unknownDriver.code).toBe(1);
      expect(unknownDriver.stderr).toBe('Unknown agent driver "nope": this daemon has manual, scripted. Nothing was written; use one of those, or leave the driver out for the default.\n');
      const unconfigured = await runCliHere(['spawn', 'x', '--driver', 'openai'], env);
      expect(unconfigured.stderr).toMatch(/^Agent driver "openai" is not configured in this daemon \(drivers here: manual, scripted\): set SUPERVISOR_RUNTIME_LLM_BASE_URL/);
      for (const refusal of [reused, unknownDriver, unconfigured]) expect(refusal.stderr).not.toMatch(/Refusing to write supervisor/);
      expect((await runtime.listSupervisors()).supervisors.map((supervisor) => supervisor.name)).toEqual(['k1']);
    });

    it('spawn and ask that time out (SUPERVISOR_RUNTIME_CLIENT_TIMEOUT_MS) say how to retry safely: run again with the printed --idempotency-key, applied once', { timeout: 60_000 }, async () => {
      const impatient = { ...env, SUPERVISOR_RUNTIME_CLIENT_TIMEOUT_MS: '1000' };
      const asker = await runtime.spawn({ name: 'asker' });
      // The writes commit at once; only their replies are late (a stalled read-back, a slow network).
      let slow = true;
      const late = <A extends unknown[], R>(write: (...args: A) => Promise<R>) => async (...args: A) => {
        const result = await write(...args);
        if (slow) await new Promise((resolve) => setTimeout(resolve, 1_500));
        return result;
      };
      runtime.spawn = late(runtime.spawn);
      runtime.askQuestion = late(runtime.askQuestion);
      const commands = [['spawn', 'nightly', 'build'], ['ask', asker.id, 'Ship?']];
      const timedOut = await Promise.all(commands.map((args) => runCliHere(args, impatient)));
      slow = false;
      for (const [index, args] of commands.entries()) {
        const { code, stderr } = timedOut[index] ?? { code: 0, stderr: '' };
        expect(code).toBe(1);
        const key = /did not answer within 1 s.*run the same command again with --idempotency-key (\S+) and it is applied once/.exec(stderr)?.[1];
        expect(key, stderr).toBeDefined();
        const again = await runCliHere([...args, '--idempotency-key', key ?? ''], env);
        expect(again.code, again.stderr).toBe(0);
      }
      expect((await runtime.listSupervisors()).supervisors.map((state) => state.name).sort()).toEqual(['asker', 'nightly build']);
      expect((await runtime.questions(asker.id)).map((question) => question.question)).toEqual(['Ship?']);
      // A key the daemon cannot take is refused in the command line's words.
      const bad = await runCliHere(['spawn', 'x', '--idempotency-key', 'has space'], env);
      expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('--idempotency-key must be one value of 1 to 255 visible ASCII characters')]);
    });
  });
}

describe('supervisor-runtime client commands without a daemon', () => {
  it('--help of each command prints its usage and exits 0', async () => {
    const usage = await runBin(['--help']);
    const names = ['daemon', 'status', 'questions', 'ask', 'answer', 'withdraw', 'spawn', 'event', 'tasks', 'checkpoints', 'conversation'];
    for (const name of names) expect(usage.stdout).toMatch(new RegExp(`^  ${name}\\s`, 'm'));
    const helps = await Promise.all(names.map((name) => runCliHere([name, '--help'])));
    for (const [index, name] of names.entries()) {
      expect(helps[index]?.code).toBe(0);
      expect(helps[index]?.stdout).toMatch(new RegExp(`^Usage: supervisor-runtime ${name}`));
    }
    expect(helps[0]?.stdout).toMatch(/--port PORT[\s\S]*--database-url URL[\s\S]*--nats-url URL[\s\S]*--inspect[\s\S]*--log-level LEVEL/);
  });

  it('says that no daemon answers, and how to start one, exit 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const results = await Promise.all([['status'], ['questions'], ['spawn', 'x'], ['answer', randomUUID(), 'q', 'yes']].map((args) => runCliHere([...args, '--url', url])));
    for (const result of results) {
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`No supervisor-runtime daemon answers at ${url}: start one with \`npx supervisor-runtime daemon\` (or npm start).\n`);
    }
    const fromEnv = await runCliHere(['status'], { SUPERVISOR_RUNTIME_URL: url });
    expect(fromEnv.stderr).toContain(`No supervisor-runtime daemon answers at ${url}`);
  });

  it('refuses missing arguments with the usage (exit 2) and a URL that is not http (exit 1), naming the problem', async () => {
    const answer = await runCliHere(['answer', 'only-one']);
    expect(answer.code).toBe(2);
    expect(answer.stderr).toMatch(/answer needs a supervisor id, a question id and the answer text/);
    // --every belongs to --watch: alone it is refused, not ignored (no daemon is asked).
    const every = await runCliHere(['status', '--every', '2', '--url', `http://127.0.0.1:${await freePort()}`]);
    expect([every.code, every.stdout]).toEqual([2, '']);
    expect(every.stderr).toMatch(/^--every sets how often --watch looks: add --watch \(`supervisor-runtime status --watch --every 2`\)\.\n\nUsage: supervisor-runtime status/);
    const status = await runCliHere(['status', '--url', 'ftp://x']);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/Invalid setting --url: expected http:\/\/… or https:\/\/…/);
  });
});
