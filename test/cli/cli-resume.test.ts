// `supervisor-runtime resume` against a real daemon process, on every database: the built binary where a test says
// so, the rest through runCli in this process (what the binary calls, minus its start-up).

import { describe, expect, it } from 'vitest';
import type { SupervisorView } from '../../src/api/views.js';
import type { RestorationInfo } from '../../src/domain/restoration.js';
import { databaseTargets } from '../helpers/databases.js';
import { daemonRequest, useDaemon } from '../helpers/daemon.js';
import { runBin, runCliHere } from '../helpers/processes.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
// The outer environment must not point the client elsewhere or send a token this daemon does not expect.
const ENV = { SUPERVISOR_RUNTIME_URL: undefined, SUPERVISOR_RUNTIME_TOKEN: undefined };

const targets = await databaseTargets();

for (const target of targets) {
  describe(`supervisor-runtime resume against a daemon on ${target.name}`, () => {
    const daemon = useDaemon(target, 'sr_cli_resume', { stopSignal: 'SIGKILL' });

    it('prints the RestorationInfo of the supervisor it restored, exit 0; --json prints it as JSON', async () => {
      const supervisor = await daemonRequest<SupervisorView>(daemon, 'POST', '/supervisors', { name: 'resumed from the cli', driver: 'manual' });
      const { questionId } = await daemonRequest<{ questionId: string }>(daemon, 'POST', `/supervisors/${supervisor.id}/questions`, { question: 'Merge the branch?' });

      const printed = await runBin(['resume', supervisor.id, '--url', daemon.url], ENV);
      expect(printed.stderr).toBe('');
      expect(printed.code).toBe(0);
      expect(printed.stdout).toMatch(new RegExp(`^Supervisor ${supervisor.id}$`, 'm'));
      expect(printed.stdout).toMatch(/^  recovery\s+restore, source manual, [\d.]+ ms$/m);
      expect(printed.stdout).toMatch(/^  restored as\s+waiting_for_user, phase planning, restoration #1$/m);
      expect(printed.stdout).toMatch(/^  questions\s+Merge the branch\? \(delivery 2\)$/m);
      expect(printed.stdout).toMatch(/^  context message:$/m);
      expect(printed.stdout).toContain(`    - ${questionId}: Merge the branch?`);

      const json = await runCliHere(['resume', supervisor.id, '--json', '--url', daemon.url], ENV);
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      const info = JSON.parse(json.stdout) as RestorationInfo;
      expect(info).toMatchObject({ supervisorId: supervisor.id, source: 'manual', recoveryAction: 'restore', restorationCount: 2 });
      expect(info.questionsRedelivered).toEqual([expect.objectContaining({ id: questionId, deliveryCount: 3 })]);
    });

    it('an unknown supervisor prints the 404 message, exit 1', async () => {
      const unknown = await runCliHere(['resume', UNKNOWN_ID, '--url', daemon.url], ENV);
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toBe('');
      expect(unknown.stderr).toMatch(new RegExp(`Supervisor ${UNKNOWN_ID} does not exist`));
    });

    it('--start-fresh-if-missing starts a fresh supervisor under an unknown id and prints what it did, exit 0', async () => {
      const id = '00000000-0000-4000-8000-0000000c1100';
      const fresh = await runCliHere(['resume', id, '--start-fresh-if-missing', '--json', '--url', daemon.url], ENV);
      expect(fresh.code).toBe(0);
      expect(JSON.parse(fresh.stdout)).toMatchObject({ supervisorId: id, source: 'manual', recoveryAction: 'start_fresh', restoredState: 'idle' });
    });
  });
}

describe('supervisor-runtime resume without a daemon', () => {
  it('without an id (or with two) it prints the usage, exit 2; --help prints it, exit 0', async () => {
    const [missing, extra, help] = await Promise.all([
      runCliHere(['resume'], ENV),
      runCliHere(['resume', UNKNOWN_ID, UNKNOWN_ID], ENV),
      runCliHere(['resume', '--help'], ENV),
    ]);
    for (const refused of [missing, extra]) {
      expect(refused.code).toBe(2);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(/^Expected exactly one supervisor id\./);
      expect(refused.stderr).toContain('Usage: supervisor-runtime resume <supervisorId>');
    }
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: supervisor-runtime resume/);
    expect(help.stdout).toContain('--json');
  });

  it('appears in the command list of --help', async () => {
    const usage = await runBin(['--help'], ENV);
    expect(usage.code).toBe(0);
    expect(usage.stdout).toMatch(/^  resume\s/m);
  });
});
