// The daemon's settings as the CLI reads them from flags and environment: defaults, implications, and errors that
// name the setting.

import { describe, expect, it } from 'vitest';
import { ConfigError, daemonSettings } from '../../src/cli/config.js';

describe('daemon settings', () => {
  it('lease settings default to a 10 s TTL renewed every 3 s, and the daemon id to <host>-<pid>', () => {
    const settings = daemonSettings({});
    expect(settings).toMatchObject({ leaseTtlMs: 10_000, leaseRenewIntervalMs: 3_000 });
    expect(settings.daemonId).toMatch(new RegExp(`-${process.pid}$`));
  });

  it('a shorter TTL renews at a third of it; a renewal slower than half the TTL is refused naming the setting', () => {
    expect(daemonSettings({ SUPERVISOR_RUNTIME_LEASE_TTL_MS: '3000' })).toMatchObject({ leaseTtlMs: 3_000, leaseRenewIntervalMs: 1_000 });
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LEASE_TTL_MS: '4000', SUPERVISOR_RUNTIME_LEASE_RENEW_MS: '2500' })).toThrow(ConfigError);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LEASE_TTL_MS: '4000', SUPERVISOR_RUNTIME_LEASE_RENEW_MS: '2500' })).toThrow(/SUPERVISOR_RUNTIME_LEASE_RENEW_MS/);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LEASE_TTL_MS: '500' })).toThrow(/SUPERVISOR_RUNTIME_LEASE_TTL_MS/);
  });

  it('--inspect-url implies --inspect instead of being ignored', () => {
    expect(daemonSettings({}, { inspectUrl: 'ws://127.0.0.1:8080' })).toMatchObject({ inspect: true, inspectUrl: 'ws://127.0.0.1:8080' });
    expect(daemonSettings({ SUPERVISOR_RUNTIME_INSPECT_URL: 'ws://127.0.0.1:8081' })).toMatchObject({ inspect: true });
    expect(daemonSettings({})).toMatchObject({ inspect: false, inspectUrl: undefined });
  });
});
