// The dashboard as a person sees it: Debian's Chromium (driven by playwright-core) on a real daemon's /dashboard.

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets } from '../helpers/databases.js';
import { createDaemonDatabase, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { serverGate } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const gate = serverGate('Chromium', existsSync(CHROMIUM), 'apt-get install -y chromium (Debian) to run the browser tests');
const pglite = (await databaseTargets()).find((target) => target.name === 'pglite');

(gate.run && pglite ? describe : describe.skip)('dashboard in a browser', () => {
  let database: DaemonDatabase;
  let daemon: DaemonProcess;
  let browser: Browser;

  beforeAll(async () => {
    database = await createDaemonDatabase(pglite!, 'sr_dash');
    daemon = await startDaemonProcess({ env: { ...database.env, SUPERVISOR_RUNTIME_TOKEN: 'dash-secret' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop('SIGTERM');
    await database?.cleanup();
  });

  it('shows each supervisor with its state and its open questions, live, with the token from the URL', { timeout: 60_000 }, async () => {
    const auth = { url: daemon.url };
    const post = async <T>(path: string, body: unknown): Promise<T> => {
      const response = await fetch(`${auth.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer dash-secret' }, body: JSON.stringify(body) });
      expect(response.ok).toBe(true);
      return (await response.json()) as T;
    };
    const supervisor = await post<{ id: string }>('/supervisors', { name: 'dashboard-visible' });
    await post(`/supervisors/${supervisor.id}/questions`, { question: 'Is the dashboard live?', choices: ['yes', 'no'] });

    const page = await browser.newPage();
    await page.goto(`${daemon.url}/dashboard#token=dash-secret`);
    const row = page.locator('#supervisors tbody tr', { hasText: 'dashboard-visible' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('.state').textContent()).toBe('waiting_for_user');
    await page.locator('#questions tbody tr', { hasText: 'Is the dashboard live?' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#health').textContent()).toMatch(/database ok, transport in-process ok/);

    // Live: an answer committed through the API shows up without reloading.
    const view = await fetch(`${daemon.url}/supervisors/${supervisor.id}`, { headers: { authorization: 'Bearer dash-secret' } }).then((r) => r.json() as Promise<{ pendingQuestions: Array<{ id: string }> }>);
    await post(`/supervisors/${supervisor.id}/questions/${view.pendingQuestions[0]?.id}/answer`, { answer: 'yes' });
    await page.locator('#supervisors tbody tr', { hasText: 'dashboard-visible' }).locator('.state', { hasText: 'working' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#questions tbody tr').count()).toBe(0);
    await page.screenshot({ path: join(tmpdir(), 'supervisor-runtime-dashboard.png'), fullPage: true });
    await page.close();
  });

  it('without the token the page loads but shows the 401 instead of data', { timeout: 30_000 }, async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${daemon.url}/dashboard`);
    expect(response?.status()).toBe(200);
    await page.locator('#error', { hasText: '401' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#supervisors tbody tr').count()).toBe(0);
    await page.close();
  });
});
