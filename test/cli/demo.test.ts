import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/processes.js';

describe('npm run demo', () => {
  it('kills a daemon in mid flight, restores it, finishes the work, and its own checks find nothing lost', { timeout: 120_000 }, async () => {
    const result = await runBin(['demo', '--no-keep'], {}, 110_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Killing the daemon with SIGKILL/);
    expect(result.stdout).toMatch(/research-assistant\s+restore\s+waiting_for_user/);
    expect(result.stdout).toMatch(/\[Restoration notice\]/);
    expect(result.stdout).not.toMatch(/✗/);
    expect(result.stdout).toMatch(/Nothing was lost\./);
    expect(result.stdout).toMatch(/Dashboard .*http:\/\/127\.0\.0\.1:\d+\/dashboard/);
  });
});
