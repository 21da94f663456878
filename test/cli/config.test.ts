// The daemon's settings as the CLI reads them from flags and environment: defaults, implications, and errors that
// name the setting.

import { describe, expect, it } from 'vitest';
import { ConfigError, daemonSettings } from '../../src/cli/config.js';
import { CRASH_POINT_NAMES, UnknownCrashPointError } from '../../src/runtime/crash-points.js';

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

  it('SUPERVISOR_RUNTIME_CRASH_POINT takes <name> or <name>:<n>; anything else is refused with every valid name', () => {
    expect(daemonSettings({}).crashPoint).toBeUndefined();
    expect(daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'save.after-commit' }).crashPoint).toEqual({ name: 'save.after-commit', pass: 1 });
    expect(daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'outbox.after-publish:3' }).crashPoint).toEqual({ name: 'outbox.after-publish', pass: 3 });
    for (const value of ['save.after-comit', 'save.after-commit:0', 'save.after-commit:x', 'constructor', 'toString']) {
      expect(() => daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: value })).toThrow(UnknownCrashPointError);
    }
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'nope' })).toThrow(`the crash points are ${CRASH_POINT_NAMES.join(', ')}`);
    // Each refusal says what is wrong: the name, the count, or the form.
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'bogus' })).toThrow('"bogus" names no crash point ("bogus");');
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'save.after-commit:0' })).toThrow('counts from 1 (got 0);');
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_CRASH_POINT: 'save.after-commit:x' })).toThrow('is not <name> or <name>:<n>');
  });

  it('--inspect-url implies --inspect instead of being ignored', () => {
    expect(daemonSettings({}, { inspectUrl: 'ws://127.0.0.1:8080' })).toMatchObject({ inspect: true, inspectUrl: 'ws://127.0.0.1:8080' });
    expect(daemonSettings({ SUPERVISOR_RUNTIME_INSPECT_URL: 'ws://127.0.0.1:8081' })).toMatchObject({ inspect: true });
    expect(daemonSettings({})).toMatchObject({ inspect: false, inspectUrl: undefined });
  });
});

describe('LLM settings', () => {
  it('are off unless a base URL is given; base URL and model come from env or flags, with defaults for the bounds', () => {
    expect(daemonSettings({}).llm).toBeUndefined();
    expect(daemonSettings({ SUPERVISOR_RUNTIME_LLM_BASE_URL: 'http://127.0.0.1:11434/v1/', SUPERVISOR_RUNTIME_LLM_MODEL: 'llama3.1' }).llm).toEqual({
      baseUrl: 'http://127.0.0.1:11434/v1',
      model: 'llama3.1',
      apiKey: undefined,
      requestTimeoutMs: 60_000,
      maxRetries: 3,
      maxRounds: 8,
    });
    const fromFlags = daemonSettings(
      { SUPERVISOR_RUNTIME_LLM_API_KEY: 'sk-x', SUPERVISOR_RUNTIME_LLM_TIMEOUT_MS: '120000' },
      { llmBaseUrl: 'https://llm.example/v1', llmModel: 'big' },
    ).llm;
    expect(fromFlags).toMatchObject({ baseUrl: 'https://llm.example/v1', model: 'big', apiKey: 'sk-x', requestTimeoutMs: 120_000 });
  });

  it('a half-given or bad setting is refused, naming the setting and what to set', () => {
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LLM_BASE_URL: 'http://127.0.0.1:11434/v1' })).toThrow(/Invalid setting SUPERVISOR_RUNTIME_LLM_MODEL: must be set with SUPERVISOR_RUNTIME_LLM_BASE_URL/);
    expect(() => daemonSettings({}, { llmBaseUrl: 'http://127.0.0.1:11434/v1' })).toThrow(/Invalid setting --llm-model: must be set with --llm-base-url/);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LLM_MODEL: 'llama3.1' })).toThrow(/Invalid setting SUPERVISOR_RUNTIME_LLM_BASE_URL: must be set when SUPERVISOR_RUNTIME_LLM_MODEL is/);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LLM_API_KEY: 'sk-x' })).toThrow(/SUPERVISOR_RUNTIME_LLM_BASE_URL: must be set when SUPERVISOR_RUNTIME_LLM_API_KEY is/);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LLM_BASE_URL: 'localhost:11434', SUPERVISOR_RUNTIME_LLM_MODEL: 'm' })).toThrow(ConfigError);
    expect(() => daemonSettings({ SUPERVISOR_RUNTIME_LLM_BASE_URL: 'http://h/v1', SUPERVISOR_RUNTIME_LLM_MODEL: 'm', SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS: '0' })).toThrow(
      /SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS: expected an integer from 1 to 100/,
    );
  });
});
