// The dashboard as a person uses it: Debian's Chromium (driven by playwright-core) on a real daemon's /dashboard.
// It asks for the token, answers questions (choice buttons and free text), shows a supervisor in full, stays live
// over GET /live, and shows the daemon's warnings as badges. Screenshots go to $DASHBOARD_SCREENSHOTS (or the temp
// folder); the README's picture is one of them.

import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { serverGate } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dash-secret';
const gate = serverGate('Chromium', existsSync(CHROMIUM), 'apt-get install -y chromium (Debian) to run the browser tests');
const pglite = (await databaseTargets()).find((target) => target.name === 'pglite');
const SHOTS = process.env.DASHBOARD_SCREENSHOTS ?? tmpdir();
/** Generous: a loaded 2-core machine renders slowly; every wait ends as soon as the page shows the thing. */
const SHOWN = { timeout: 20_000 };

interface View {
  id: string;
  state: string;
  pendingQuestions: Array<{ id: string; question: string }>;
}

(gate.run && pglite ? describe : describe.skip)('dashboard in a browser', () => {
  let database: DaemonDatabase;
  let daemon: DaemonProcess;
  let browser: Browser;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${daemon.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** A page that has been given the token once, as a person does at the prompt. */
  async function signedIn(path = '/dashboard', options: { live?: boolean } = {}): Promise<Page> {
    const page = await browser.newPage();
    // Without the live stream the page shows what it read and nothing more (as while /live reconnects).
    if (options.live === false) await page.route('**/live', (route) => route.abort());
    await page.goto(`${daemon.url}${path}`);
    await page.locator('#login').waitFor(SHOWN);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator(options.live === false ? '#live.down' : '#live.ok').waitFor(SHOWN);
    return page;
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    database = await createDaemonDatabase(pglite!, 'sr_dash');
    // No worker in this daemon, so tasks wait (and the no-worker badge shows); the test reports task progress itself.
    daemon = await startDaemonProcess({
      env: { ...database.env, SUPERVISOR_RUNTIME_TOKEN: TOKEN, SUPERVISOR_RUNTIME_EMBEDDED_WORKER: 'false', SUPERVISOR_RUNTIME_NO_WORKER_WARNING_MS: '1000' },
      readyTimeoutMs: 90_000,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop('SIGTERM');
    await database?.cleanup();
  });

  it('asks for the token and keeps it for the session; a wrong token is said so', { timeout: 90_000 }, async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${daemon.url}/dashboard`);
    expect(response?.status()).toBe(200);
    await page.locator('#login').waitFor(SHOWN);
    expect(await page.locator('#list-view').isHidden()).toBe(true);

    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.locator('#login-problem', { hasText: 'That token was refused.' }).waitFor(SHOWN);

    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator('#list-view').waitFor(SHOWN);
    await page.locator('#live.ok').waitFor(SHOWN);
    // Kept for the session: a reload does not ask again.
    await page.reload();
    await page.locator('#live.ok').waitFor(SHOWN);
    expect(await page.locator('#login').isHidden()).toBe(true);
    expect(await page.evaluate('sessionStorage.getItem("supervisor-runtime.token")')).toBe(TOKEN);
    await page.close();
  });

  it('answers a question with its choice button; the supervisor moves on, live, without a reload', { timeout: 90_000 }, async () => {
    const page = await signedIn();
    const supervisor = await call<View>('POST', '/supervisors', { name: 'release-train' });
    const asked = await call<{ questionId: string }>('POST', `/supervisors/${supervisor.id}/questions`, { question: 'Ship on Friday?', choices: ['yes', 'no'] });

    const row = page.locator(`#supervisors tr[data-id="${supervisor.id}"]`);
    await row.locator('.state', { hasText: 'waiting_for_user' }).waitFor(SHOWN);
    const question = page.locator(`#questions tr[data-question="${asked.questionId}"]`);
    await question.waitFor(SHOWN);
    await question.locator('button[data-answer="yes"]').click();

    await row.locator('.state', { hasText: 'working' }).waitFor(SHOWN);
    await question.waitFor({ state: 'detached', ...SHOWN });
    const stored = (await call<{ questions: Array<{ id: string; answer: string | null }> }>('GET', `/supervisors/${supervisor.id}/questions`)).questions;
    expect(stored.find((q) => q.id === asked.questionId)?.answer).toBe('yes');
    await page.close();
  });

  it('a supervisor\'s page: free-text answer, tasks with progress, state timeline, conversation; the no-worker badge', { timeout: 90_000 }, async () => {
    const supervisor = await call<View>('POST', '/supervisors', { name: 'docs-rewrite' });
    const task = await call<{ taskId: string }>('POST', `/supervisors/${supervisor.id}/tasks`, { description: 'collect the open issues', taskId: 'collect-issues' });
    await call('POST', `/supervisors/${supervisor.id}/tasks`, { description: 'draft the outline', taskId: 'draft-outline' });
    await call('POST', `/supervisors/${supervisor.id}/events`, { type: 'SET_PHASE', phase: 'execution' });
    const asked = await call<{ questionId: string }>('POST', `/supervisors/${supervisor.id}/questions`, { question: 'Which audience comes first?', context: 'The old docs mixed operators and developers.' });

    const page = await signedIn(`/dashboard#/supervisors/${supervisor.id}`);
    await page.locator('#detail-view').waitFor(SHOWN);
    await page.locator('#detail-title', { hasText: 'docs-rewrite' }).waitFor(SHOWN);
    await page.locator('#detail-tasks tr[data-task="collect-issues"] .state', { hasText: 'running' }).waitFor(SHOWN);
    await page.locator('#detail-tasks tr[data-task="draft-outline"]').waitFor(SHOWN);
    // The state timeline lists the checkpoints: spawn, tasks, phase, question.
    for (const reason of ['task spawned', 'phase changed', 'question asked']) await page.locator('#detail-timeline li', { hasText: reason }).first().waitFor(SHOWN);

    // Tasks wait with no worker taking them: the badge says so and how to fix it.
    const badge = page.locator('.badge[data-warning="no-task-worker"]');
    await badge.waitFor(SHOWN);
    expect(await badge.textContent()).toMatch(/2 task\(s\) are running with no worker: 2 spawn message\(s\) wait on .*tasks\.spawn/);

    // A worker's progress report shows up live on the page.
    await call('POST', `/tasks/${task.taskId}/events`, { type: 'progress', progress: 40 });
    await page.locator('#detail-tasks tr[data-task="collect-issues"]', { hasText: '40%' }).waitFor(SHOWN);

    const box = page.locator(`#detail-questions tr[data-question="${asked.questionId}"] .answer`);
    await box.locator('input[name=answer]').fill('operators first');
    await page.screenshot({ path: join(SHOTS, 'dashboard-supervisor.png'), fullPage: true });
    await box.locator('button[type=submit]').click();
    await page.locator('#detail-questions', { hasText: 'No question waits for an answer.' }).waitFor(SHOWN);
    // The conversation records the question and the answer.
    await page.locator('#detail-conversation', { hasText: 'operators first' }).waitFor(SHOWN);
    await page.locator('#detail-title .state', { hasText: 'waiting_for_tasks' }).waitFor(SHOWN);

    // The task finishes: result on the page, and the supervisor moves on once both are done.
    await call('POST', `/tasks/${task.taskId}/events`, { type: 'completed', result: '14 open issues' });
    await call('POST', '/tasks/draft-outline/events', { type: 'failed', error: 'outline tool crashed' });
    await page.locator('#detail-tasks tr[data-task="collect-issues"]', { hasText: '14 open issues' }).waitFor(SHOWN);
    await page.locator('#detail-tasks tr[data-task="draft-outline"]', { hasText: 'outline tool crashed' }).waitFor(SHOWN);
    await badge.waitFor({ state: 'detached', ...SHOWN });
    await page.locator('#detail-title .state', { hasText: 'working' }).waitFor(SHOWN);
    await page.close();
  });

  it('an answer the daemon refuses is shown next to the question, naming the first answer', { timeout: 90_000 }, async () => {
    const supervisor = await call<View>('POST', '/supervisors', { name: 'refusal' });
    const asked = await call<{ questionId: string }>('POST', `/supervisors/${supervisor.id}/questions`, { question: 'Proceed?' });
    // A page that has not heard of the other answer yet (its live stream is down).
    const page = await signedIn(`/dashboard#/supervisors/${supervisor.id}`, { live: false });
    const box = page.locator(`#detail-questions tr[data-question="${asked.questionId}"] .answer`);
    await box.waitFor(SHOWN);
    // Answered elsewhere first (another operator, the CLI): the page's answer is refused with the first one named.
    await call('POST', `/supervisors/${supervisor.id}/questions/${asked.questionId}/answer`, { answer: 'yes, from the CLI' });
    await box.locator('input[name=answer]').fill('no');
    await box.locator('button[type=submit]').click();
    const problem = box.locator('.problem');
    await problem.waitFor(SHOWN);
    expect(await problem.textContent()).toMatch(/already answered.*yes, from the CLI/s);
    const stored = (await call<{ questions: Array<{ id: string; answer: string | null }> }>('GET', `/supervisors/${supervisor.id}/questions`)).questions;
    expect(stored.find((q) => q.id === asked.questionId)?.answer).toBe('yes, from the CLI');
    await page.close();
  });

  it('an interrupted supervisor is resumed from its page and goes back to what it was doing', { timeout: 90_000 }, async () => {
    const supervisor = await call<View>('POST', '/supervisors', { name: 'paused-by-operator' });
    await call('POST', `/supervisors/${supervisor.id}/questions`, { question: 'Keep going?', choices: ['yes', 'no'] });
    await call('POST', `/supervisors/${supervisor.id}/events`, { type: 'INTERRUPT', reason: 'operator paused it' });
    const page = await signedIn(`/dashboard#/supervisors/${supervisor.id}`);
    await page.locator('#detail-title .state', { hasText: 'interrupted' }).waitFor(SHOWN);
    await page.click('#resume');
    // Once seen timing out in a full CI run (not reproduced since): then say what the page and the daemon showed.
    await page.locator('#detail-title .state', { hasText: 'waiting_for_user' }).waitFor(SHOWN).catch(async (error: unknown) => {
      const shown = await page.locator('#detail-view').innerText().catch((cause: unknown) => `(page unreadable: ${String(cause)})`);
      throw new Error(`${String(error)}\n--- the page showed:\n${shown}\n--- daemon log (tail):\n${daemon.logs().slice(-4_000)}`);
    });
    expect(await page.locator('#resume').count()).toBe(0);
    await page.locator('#detail-restorations', { hasText: 'Restored 1 time(s)' }).waitFor(SHOWN);
    const stored = await call<View & { restorationSource: string | null }>('GET', `/supervisors/${supervisor.id}`);
    expect(stored).toMatchObject({ state: 'waiting_for_user', restorationSource: 'manual' });
    await page.close();
  });

  it('a checkpoint is forked from the timeline: the fork\'s page opens, says where it came from, and the source lists it', { timeout: 90_000 }, async () => {
    const source = await call<View>('POST', '/supervisors', { name: 'forked-from-page' });
    await call('POST', `/supervisors/${source.id}/questions`, { question: 'Which way?', choices: ['left', 'right'] });
    const { checkpoints } = await call<{ checkpoints: Array<{ seq: number; state: string }> }>('GET', `/supervisors/${source.id}/checkpoints?limit=1`);
    const asked = checkpoints[0]!;
    expect(asked.state).toBe('waiting_for_user');
    await call('POST', `/supervisors/${source.id}/questions/${(await call<View>('GET', `/supervisors/${source.id}`)).pendingQuestions[0]!.id}/answer`, { answer: 'left' });
    await call('POST', `/supervisors/${source.id}/events`, { type: 'COMPLETE', summary: 'went left' });

    const page = await signedIn(`/dashboard#/supervisors/${source.id}`);
    await page.locator('#detail-title .state', { hasText: 'completed' }).waitFor(SHOWN);
    // The completed checkpoint has no button; the one where the question was asked has.
    await page.locator(`#detail-timeline li[data-seq="${asked.seq}"] button[data-fork]`).waitFor(SHOWN);
    expect(await page.locator('#detail-timeline li', { hasText: 'completed' }).locator('button[data-fork]').count()).toBe(0);
    await page.click(`#detail-timeline li[data-seq="${asked.seq}"] button[data-fork]`);
    // The fork's own page: waiting for the same question again, and saying where it came from.
    await page.locator('#detail-title', { hasText: 'forked-from-page (fork)' }).waitFor(SHOWN);
    await page.locator('#detail-title .state', { hasText: 'waiting_for_user' }).waitFor(SHOWN);
    await page.locator(`#detail-forks [data-forked-from="${source.id}"]`, { hasText: `at checkpoint ${asked.seq}` }).waitFor(SHOWN);
    await page.locator('#detail-questions', { hasText: 'Which way?' }).waitFor(SHOWN);
    const forkId = /#\/supervisors\/([0-9a-f-]{36})/.exec(page.url())?.[1];
    expect(forkId).toBeDefined();
    // Answered on the fork's page, the other way: the fork's answer is its own.
    await page.click('#detail-questions button[data-answer="right"]');
    await page.locator('#detail-questions', { hasText: 'No question waits for an answer.' }).waitFor(SHOWN);
    expect((await call<{ questions: Array<{ answer: string | null }> }>('GET', `/supervisors/${forkId}/questions`)).questions[0]?.answer).toBe('right');
    expect((await call<{ questions: Array<{ answer: string | null }> }>('GET', `/supervisors/${source.id}/questions`)).questions[0]?.answer).toBe('left');
    await page.click(`#detail-forks a[href="#/supervisors/${source.id}"]`);
    await page.locator(`#detail-forks [data-fork-of="${forkId}"]`, { hasText: `from checkpoint ${asked.seq}` }).waitFor(SHOWN);
    await page.close();
  });

  it('a supervisor\'s page lists the messages it sent and took in, each linked to the other supervisor', { timeout: 90_000 }, async () => {
    const sender = await call<View>('POST', '/supervisors', { name: 'messaging-sender' });
    const receiver = await call<View>('POST', '/supervisors', { name: 'messaging-receiver' });
    await call('POST', `/supervisors/${sender.id}/messages`, { to: receiver.id, body: 'Please take the review.', messageId: 'dash-1' });
    const page = await signedIn(`/dashboard#/supervisors/${receiver.id}`);
    // Taken in by the receiver's owner from the inbox; the page shows it once it is stored (live, or the next refresh).
    await page.locator('#detail-messages tr[data-message="dash-1"][data-direction="received"]', { hasText: 'Please take the review.' }).waitFor(SHOWN);
    await page.click(`#detail-messages a[href="#/supervisors/${sender.id}"]`);
    await page.locator('#detail-title', { hasText: 'messaging-sender' }).waitFor(SHOWN);
    await page.locator('#detail-messages tr[data-message="dash-1"][data-direction="sent"]', { hasText: 'to' }).waitFor(SHOWN);
    await page.close();
  });

  it('lists every supervisor a page at a time (next and previous, the count), questions from every page, and stays live on any page', { timeout: 120_000 }, async () => {
    // Created one after another, so the newest-first order is theirs; the oldest asks a question (it is not on page one).
    const paged: View[] = [];
    for (let n = 0; n < 7; n += 1) paged.push(await call<View>('POST', '/supervisors', { name: `paged-${n}` }));
    const asked = await call<{ questionId: string }>('POST', `/supervisors/${paged[0]!.id}/questions`, { question: 'Paged question?', choices: ['go'] });
    const { total } = await call<{ total: number }>('GET', '/supervisors?limit=1');
    expect(total).toBeGreaterThanOrEqual(7);
    const pages = Math.ceil(total / 3);

    const page = await signedIn('/dashboard?pageSize=3');
    const rows = page.locator('#supervisors tbody tr');
    const ids = async () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
    await page.locator('#count', { hasText: `(1–3 of ${total})` }).waitFor(SHOWN);
    expect(await ids()).toEqual([paged[6]!.id, paged[5]!.id, paged[4]!.id]);
    expect(await page.locator('#page-prev').isDisabled()).toBe(true);
    // The question of a supervisor on a later page is there to answer.
    await page.locator(`#questions tr[data-question="${asked.questionId}"] button[data-answer="go"]`).waitFor(SHOWN);

    await page.click('#page-next');
    await page.locator('#count', { hasText: `(4–6 of ${total})` }).waitFor(SHOWN);
    expect(await ids()).toEqual([paged[3]!.id, paged[2]!.id, paged[1]!.id]);
    // Live on the second page too: a change shows without a reload.
    await call('POST', `/supervisors/${paged[2]!.id}/events`, { type: 'SET_ACTIVITY', activity: 'on page two', progress: 55 });
    await page.locator(`#supervisors tr[data-id="${paged[2]!.id}"]`, { hasText: 'on page two' }).waitFor(SHOWN);

    // Every page in turn: each supervisor once, all of them, and the last page has no next.
    const seen = [...(await ids())];
    for (let n = 3; n <= pages; n += 1) {
      await page.click('#page-next');
      await page.locator('#page-info', { hasText: `page ${n} ·` }).waitFor(SHOWN);
      seen.push(...(await ids()));
    }
    expect(await page.locator('#page-next').isDisabled()).toBe(true);
    expect(seen).toHaveLength(total - 3);
    expect(new Set(seen).size).toBe(total - 3);
    expect(seen).toContain(paged[0]!.id);

    // Back to the first page; a new supervisor shows on it live, and the count follows.
    for (let n = pages; n > 1; n -= 1) await page.click('#page-prev');
    await page.locator('#count', { hasText: `(1–3 of ${total})` }).waitFor(SHOWN);
    const newest = await call<View>('POST', '/supervisors', { name: 'paged-new' });
    await page.locator('#count', { hasText: `(1–3 of ${total + 1})` }).waitFor(SHOWN);
    await page.locator(`#supervisors tr[data-id="${newest.id}"]`).waitFor(SHOWN);
    expect(await ids()).toEqual([newest.id, paged[6]!.id, paged[5]!.id]);
    await page.close();
  });

  it('the list page as an operator sees it (the README\'s screenshot)', { timeout: 90_000 }, async () => {
    const supervisor = await call<View>('POST', '/supervisors', { name: 'nightly-report' });
    await call('POST', `/supervisors/${supervisor.id}/questions`, { question: 'Include the weekend numbers?', choices: ['yes', 'no', 'only Sunday'] });
    const page = await signedIn();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator(`#supervisors tr[data-id="${supervisor.id}"]`).waitFor(SHOWN);
    await page.locator('#questions button[data-answer="only Sunday"]').waitFor(SHOWN);
    await page.locator('#restorations', { hasText: 'Nothing was restored when this daemon started.' }).waitFor(SHOWN);
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    expect(await page.locator('#supervisors tbody tr').count()).toBeGreaterThanOrEqual(4);
    await page.close();
  });
});
