// Property-based fuzz of every HTTP route (fast-check): whatever the path ids, query and body, the answer is never a
// 500, and a request that is refused (4xx) writes nothing: the stored step of every supervisor stays where it was.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import type { CheckpointListResponse } from '../../src/api/views.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
/** A fixed seed keeps CI's run repeatable (a failure prints its seed and path); FUZZ_SEED explores others. */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);

type Method = 'GET' | 'POST';
const ROUTES: Array<[Method, string]> = [
  ['POST', '/supervisors'],
  ['GET', '/supervisors'],
  ['GET', '/supervisors/:id'],
  ['POST', '/supervisors/:id/events'],
  ['POST', '/supervisors/:id/questions'],
  ['POST', '/supervisors/:id/questions/:qid/answer'],
  ['POST', '/supervisors/:id/questions/:qid/withdraw'],
  ['POST', '/supervisors/:id/tasks'],
  ['POST', '/tasks/:taskId/events'],
  ['GET', '/supervisors/:id/checkpoints'],
  ['GET', '/supervisors/:id/questions'],
  ['GET', '/supervisors/:id/tasks'],
  ['GET', '/supervisors/:id/conversation'],
  ['POST', '/supervisors/:id/resume'],
  ['POST', '/supervisors/:id/fork'],
  ['GET', '/supervisors/:id/forks'],
  ['POST', '/supervisors/:id/messages'],
  ['GET', '/supervisors/:id/messages'],
  ['GET', '/supervisors/:id/check'],
  ['GET', '/check'],
  ['GET', '/restorations'],
  ['GET', '/daemons'],
  ['GET', '/healthz'],
  ['GET', '/dead-letters'],
  ['GET', '/metrics'],
];

/** Strings a client could send, hostile ones included: NUL, lone surrogates, huge, numeric-looking, path-like. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', '../..', '%00', '-5', '0', '1e309', 'null', 'true', '[]', '{}', 'x'.repeat(5_000)),
);

const FIELDS = ['id', 'name', 'phase', 'driver', 'type', 'question', 'questionId', 'choices', 'context', 'answer', 'reason', 'description', 'taskId', 'kind', 'progress', 'result', 'error', 'activity', 'summary', 'startFreshIfMissing', 'at', 'to', 'body', 'messageId', 'checkpointSeq', 'start', 'direction'];
const EVENT_TYPES = ['START', 'SET_ACTIVITY', 'SPAWN_TASK', 'TASK_EVENT', 'ASK_QUESTION', 'ANSWER', 'WITHDRAW_QUESTION', 'SET_PHASE', 'HEARTBEAT', 'COMPLETE', 'FAIL', 'INTERRUPT', 'RESUME', 'RESTORED', 'SEND_MESSAGE', 'RECEIVE_MESSAGE', 'progress', 'completed', 'failed'];

/** Percent-encode a path segment; a lone surrogate (not encodable) goes out as the invalid UTF-8 a raw client would send. */
function segment(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return [...text].map((char) => (/[\ud800-\udfff]/.test(char) ? '%ED%A0%80' : encodeURIComponent(char))).join('');
  }
}

const value: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.constantFrom(...EVENT_TYPES),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 100, 101, 2 ** 53, Number.MAX_SAFE_INTEGER),
  fc.boolean(),
  fc.constant(null),
  fc.array(nastyString, { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 6 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(undefined),
);

for (const target of await databaseTargets()) {
  describe(`HTTP fuzz on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it(`${RUNS} random requests over every route: never a 500, and a refused request writes nothing`, { timeout: 240_000 }, async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const app = await createApiServer(runtime);
      try {
        // Real targets for the ids to hit: a supervisor with a pending question and a running task.
        const supervisor = await runtime.spawn({ name: 'fuzzed' });
        const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'fuzz task' });
        const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Fuzz?', choices: ['a', 'b'] });
        const steps = async () => Object.fromEntries((await runtime.listSupervisors()).supervisors.map((state) => [state.id, state.step]));

        const pathId = fc.oneof(fc.constant(supervisor.id), fc.constant(randomUUID()), nastyString);
        const request = fc.record({
          route: fc.constantFrom(...ROUTES),
          id: pathId,
          qid: fc.oneof(fc.constant(questionId), nastyString),
          taskId: fc.oneof(fc.constant(taskId), nastyString),
          query: fc.dictionary(fc.constantFrom('limit', 'snapshots', 'answered', 'fromSeq', 'pendingQuestions', 'x'), nastyString, { maxKeys: 3 }),
          body,
          rawBody: fc.option(fc.constantFrom('{', '{"a":', 'null', '"text"', '[1,2', '\u0000'), { nil: undefined }),
        });

        const statuses = new Map<number, number>();
        await fc.assert(
          fc.asyncProperty(request, async ({ route: [method, template], id, qid, taskId: task, query, body: payload, rawBody }) => {
            const path = template
              .replace(':id', segment(id))
              .replace(':qid', segment(qid))
              .replace(':taskId', segment(task));
            const search = Object.entries(query)
              .map(([key, text]) => `${key}=${segment(text)}`)
              .join('&');
            const before = await steps();
            const response = await app.inject({
              method,
              url: search ? `${path}?${search}` : path,
              ...(method === 'POST' && rawBody !== undefined
                ? { payload: rawBody, headers: { 'content-type': 'application/json' } }
                : method === 'POST' && payload !== undefined
                  ? { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }
                  : {}),
            });
            statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
            expect(response.statusCode, `${method} ${path} ${JSON.stringify(payload)} → ${response.body}`).toBeLessThan(500);
            if (response.statusCode >= 400) {
              expect(response.json(), response.body).toMatchObject({ error: expect.any(String), message: expect.any(String) });
              expect(await steps(), `${method} ${path} was refused but wrote`).toEqual(before);
              // A schema refusal names the field and a rule in words: never a raw regex (a pattern without a registered rule).
              const problems = (response.json() as { problems?: unknown }).problems;
              for (const problem of Array.isArray(problems) ? problems : []) {
                expect(problem, response.body).toMatch(/^(body|querystring|params)\b/);
                expect(problem, response.body).not.toMatch(/must match the pattern/);
              }
            }
          }),
          { numRuns: RUNS, seed: SEED },
        );
        // Not vacuous: requests got through as well as being refused, and the refusals were of several kinds.
        const count = (test: (status: number) => boolean) => [...statuses].filter(([status]) => test(status)).reduce((sum, [, n]) => sum + n, 0);
        expect(count((status) => status < 300), JSON.stringify([...statuses])).toBeGreaterThan(RUNS / 20);
        expect(new Set([...statuses.keys()].filter((status) => status >= 400)).size, JSON.stringify([...statuses])).toBeGreaterThanOrEqual(2);
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    });

    /** A server over a supervisor with a running task and a pending question, for the hand-picked hostile requests below. */
    async function withTargets(work: (app: FastifyInstance, targets: { id: string; taskId: string; questionId: string }) => Promise<void>): Promise<void> {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const app = await createApiServer(runtime);
      try {
        const supervisor = await runtime.spawn({ name: 'hostile' });
        const { taskId } = await runtime.spawnTask(supervisor.id, { description: 'hostile task' });
        const { questionId } = await runtime.askQuestion(supervisor.id, { question: 'Hostile?' });
        await work(app, { id: supervisor.id, taskId, questionId });
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    }

    it('a body nested 30 000 levels deep (60 KB of brackets) is 400 naming the nesting at every POST route, not a stack overflow', async () => {
      await withTargets(async (app, { id, taskId, questionId }) => {
        const depth = 30_000;
        const payload = `{"name":${'['.repeat(depth)}${']'.repeat(depth)}}`;
        expect(payload.length).toBeLessThan(64 * 1024);
        for (const [method, template] of ROUTES.filter(([method]) => method === 'POST')) {
          const path = template.replace(':id', id).replace(':qid', questionId).replace(':taskId', taskId);
          const response = await app.inject({ method, url: path, payload, headers: { 'content-type': 'application/json' } });
          expect(response.statusCode, `${path} → ${response.body.slice(0, 300)}`).toBe(400);
          expect(response.json<{ message: string }>().message).toMatch(/body\.name(\.0)* nests arrays or objects more than 32 levels deep/);
        }
        // A body a client really sends, nested as deep as any field is, still passes.
        expect((await app.inject({ method: 'POST', url: `/supervisors/${id}/questions`, payload: { question: 'Which?', choices: ['a', 'b'] } })).statusCode).toBe(201);
      });
    });

    it('every task and question id the API accepts works in its URLs (128 characters included); one that would not is 400 when asked', async () => {
      await withTargets(async (app, { id }) => {
        const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
        const longest = 'x'.repeat(128);
        expect((await post(`/supervisors/${id}/tasks`, { taskId: longest, description: 'long' })).statusCode).toBe(201);
        const reported = await post(`/tasks/${longest}/events`, { type: 'completed', result: 'ok' });
        expect(reported.statusCode, reported.body).toBe(200);
        for (const questionId of [longest, `${longest.slice(1)}-`]) {
          expect((await post(`/supervisors/${id}/questions`, { questionId, question: 'Long?' })).statusCode).toBe(201);
        }
        const answered = await post(`/supervisors/${id}/questions/${longest}/answer`, { answer: 'yes' });
        expect(answered.statusCode, answered.body).toBe(200);
        const withdrawn = await post(`/supervisors/${id}/questions/${longest.slice(1)}-/withdraw`, {});
        expect(withdrawn.statusCode, withdrawn.body).toBe(200);
        // Ids no URL could carry as they are ("/", "." and "..", spaces, over 128 characters) are refused before anything is asked.
        for (const questionId of ['a/b', '.', '..', 'a b', 'a?b', 'é', 'y'.repeat(129)]) {
          for (const [url, payload] of [
            [`/supervisors/${id}/questions`, { questionId, question: 'Odd?' }],
            [`/supervisors/${id}/events`, { type: 'ASK_QUESTION', questionId, question: 'Odd?' }],
          ] as const) {
            const refused = await post(url, payload);
            expect(refused.statusCode, `${url} ${JSON.stringify(questionId)}`).toBe(400);
            expect(refused.json<{ problems: string[] }>().problems).toEqual(['body.questionId must be letters, digits, _ and - only, 1 to 128 characters (it is used in subjects and URLs as it is)']);
          }
        }
      });
    });

    it('an id or a query parameter a route does not take is 400 naming it: a urn:uuid id, an unknown parameter on every listing route', async () => {
      await withTargets(async (app, { id }) => {
        const problems = async (method: Method, url: string) => {
          const response = await app.inject({ method, url, ...(method === 'POST' ? { payload: { type: 'HEARTBEAT' } } : {}) });
          expect(response.statusCode, `${url} → ${response.body}`).toBe(400);
          return response.json<{ problems: string[] }>().problems;
        };
        // Ajv's format "uuid" takes "urn:uuid:…"; Postgres does not.
        for (const [method, url] of [['GET', `/supervisors/urn:uuid:${id}`], ['POST', `/supervisors/urn:uuid:${id}/events`], ['GET', `/supervisors/{${id}}/checkpoints`]] as const) {
          expect(await problems(method, url)).toEqual(['params.id must be a UUID']);
        }
        for (const url of ['/supervisors?pendingQuestion=true', `/supervisors/${id}/checkpoints?before=2`, `/supervisors/${id}/tasks?status=running`, `/supervisors/${id}/questions?bogus=1`, `/supervisors/${id}/conversation?bogus=1`]) {
          expect(await problems('GET', url)).toEqual([expect.stringMatching(/^querystring\.\w+ is not an accepted field$/)]);
        }
        // ?beforeSeq pages the checkpoints, as the runtime does.
        const all = (await app.inject({ method: 'GET', url: `/supervisors/${id}/checkpoints` })).json<CheckpointListResponse>().checkpoints.map((checkpoint) => checkpoint.seq);
        expect(all.length).toBeGreaterThanOrEqual(3);
        const page = await app.inject({ method: 'GET', url: `/supervisors/${id}/checkpoints?limit=1&beforeSeq=${all[0]}` });
        expect(page.json<CheckpointListResponse>().checkpoints.map((checkpoint) => checkpoint.seq)).toEqual([all[1]]);
      });
    });
  });
}
