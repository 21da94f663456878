// The one place that reads flags and environment and validates them; every error names the setting that is wrong.

import { hostname } from 'node:os';
import { SupervisorRuntimeError } from '../domain/errors.js';
import { DEFAULT_DATA_DIR, isSchemaName } from '../persistence/database.js';
import { parseCrashPoint, type CrashPointSpec } from '../runtime/crash-points.js';

export class ConfigError extends SupervisorRuntimeError {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    detail: string,
  ) {
    super(`Invalid setting ${setting}: ${detail}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface DatabaseSettings {
  databaseUrl: string | undefined;
  dataDir: string;
  /** The Postgres schema the runtime works in (created if missing); undefined: the connection's own search_path. */
  schema: string | undefined;
}

export interface DaemonSettings extends DatabaseSettings {
  host: string;
  port: number;
  natsUrl: string | undefined;
  subjectPrefix: string;
  token: string | undefined;
  inspect: boolean;
  inspectUrl: string | undefined;
  heartbeatIntervalMs: number;
  logLevel: LogLevel;
  logPretty: boolean;
  daemonId: string;
  /** The URL other daemons and clients should use for this daemon (default: its listening address). */
  advertiseUrl: string | undefined;
  /** Membership lease: a daemon that stops renewing for this long loses its supervisors to the others. */
  leaseTtlMs: number;
  leaseRenewIntervalMs: number;
  restoreConcurrency: number;
  /** Checkpoints kept per supervisor; older ones are pruned in the background. */
  checkpointRetain: number;
  /** Postgres statement timeout (0: none); a server that does not answer within it plus 2 s fails with outcome unknown. */
  statementTimeoutMs: number;
  /** Run a sample task worker inside the daemon (the embedded default, so tasks finish without a separate worker). */
  embeddedWorker: boolean;
  /** The sample worker's simulated task durations and failure share. */
  worker: WorkerSettings;
  /** Warn when tasks wait this long on tasks.spawn with no worker taking them (0: never warn). */
  noWorkerWarningMs: number;
  /** The OpenAI-compatible model server behind driver `openai`; undefined: that driver is not offered. */
  llm: LlmSettings | undefined;
  /** SUPERVISOR_RUNTIME_CRASH_POINT: the named point where this process kills itself (the crash-point tests). */
  crashPoint?: CrashPointSpec | undefined;
}

export interface LlmSettings {
  baseUrl: string;
  model: string;
  apiKey: string | undefined;
  requestTimeoutMs: number;
  maxRetries: number;
  maxRounds: number;
}

/**
 * The LLM driver's server. Base URL and model go together; the key is read from the environment only, because a
 * flag would put it in `ps` output and shell history.
 */
export function llmSettings(env: Env, flags: { baseUrl?: string | undefined; model?: string | undefined } = {}): LlmSettings | undefined {
  const baseUrlSetting = flags.baseUrl !== undefined ? '--llm-base-url' : 'SUPERVISOR_RUNTIME_LLM_BASE_URL';
  const modelSetting = flags.model !== undefined ? '--llm-model' : 'SUPERVISOR_RUNTIME_LLM_MODEL';
  const baseUrl = parseUrlSetting(baseUrlSetting, flags.baseUrl ?? env.SUPERVISOR_RUNTIME_LLM_BASE_URL, ['http:', 'https:'])?.replace(/\/+$/, '');
  const model = nonEmpty(flags.model ?? env.SUPERVISOR_RUNTIME_LLM_MODEL);
  const apiKey = nonEmpty(env.SUPERVISOR_RUNTIME_LLM_API_KEY);
  const requestTimeoutMs = parseIntegerSetting('SUPERVISOR_RUNTIME_LLM_TIMEOUT_MS', env.SUPERVISOR_RUNTIME_LLM_TIMEOUT_MS, 60_000, 100, 3_600_000);
  const maxRetries = parseIntegerSetting('SUPERVISOR_RUNTIME_LLM_MAX_RETRIES', env.SUPERVISOR_RUNTIME_LLM_MAX_RETRIES, 3, 0, 10);
  const maxRounds = parseIntegerSetting('SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS', env.SUPERVISOR_RUNTIME_LLM_MAX_ROUNDS, 8, 1, 100);
  if (baseUrl === undefined) {
    // A model or key with nowhere to send it is a half-done configuration, not "no LLM".
    const orphan = model !== undefined ? modelSetting : apiKey !== undefined ? 'SUPERVISOR_RUNTIME_LLM_API_KEY' : undefined;
    if (orphan) {
      throw new ConfigError('SUPERVISOR_RUNTIME_LLM_BASE_URL', `must be set when ${orphan} is: the server's OpenAI-compatible base, e.g. http://127.0.0.1:11434/v1 for Ollama`);
    }
    return undefined;
  }
  if (model === undefined) {
    // Named the way the base URL was given, so the fix sits next to it.
    throw new ConfigError(flags.baseUrl !== undefined ? '--llm-model' : 'SUPERVISOR_RUNTIME_LLM_MODEL', `must be set with ${baseUrlSetting}: the name of a model the server serves (for Ollama, one that \`ollama list\` shows)`);
  }
  return { baseUrl, model, apiKey, requestTimeoutMs, maxRetries, maxRounds };
}

export interface WorkerSettings {
  minDurationMs: number;
  maxDurationMs: number;
  failureRate: number;
}

export function parseRateSetting(setting: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) throw new ConfigError(setting, `expected a number from 0 to 1, got "${value}"`);
  return parsed;
}

export function workerSettings(env: Env, flags: { minMs?: string | undefined; maxMs?: string | undefined; failureRate?: string | undefined } = {}): WorkerSettings {
  const minDurationMs = parseIntegerSetting(flags.minMs !== undefined ? '--min-ms' : 'SUPERVISOR_RUNTIME_WORKER_MIN_MS', flags.minMs ?? env.SUPERVISOR_RUNTIME_WORKER_MIN_MS, 300, 0, 3_600_000);
  const maxDurationMs = parseIntegerSetting(flags.maxMs !== undefined ? '--max-ms' : 'SUPERVISOR_RUNTIME_WORKER_MAX_MS', flags.maxMs ?? env.SUPERVISOR_RUNTIME_WORKER_MAX_MS, Math.max(1_500, minDurationMs), 0, 3_600_000);
  if (maxDurationMs < minDurationMs) {
    throw new ConfigError(
      flags.maxMs !== undefined ? '--max-ms' : 'SUPERVISOR_RUNTIME_WORKER_MAX_MS',
      `must be at least ${flags.minMs !== undefined ? '--min-ms' : 'SUPERVISOR_RUNTIME_WORKER_MIN_MS'} (${minDurationMs}), got ${maxDurationMs}`,
    );
  }
  return {
    minDurationMs,
    maxDurationMs,
    failureRate: parseRateSetting(flags.failureRate !== undefined ? '--failure-rate' : 'SUPERVISOR_RUNTIME_WORKER_FAILURE_RATE', flags.failureRate ?? env.SUPERVISOR_RUNTIME_WORKER_FAILURE_RATE, 0),
  };
}

export const DEFAULT_PORT = 7077;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_URL = `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevelSetting(setting: string, value: string | undefined, fallback: LogLevel): LogLevel {
  const level = (value ?? fallback).toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(setting, `expected one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  return level as LogLevel;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function parseBooleanSetting(setting: string, value: string | boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  if (['1', 'true', 'yes', 'on'].includes(value.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off', ''].includes(value.toLowerCase())) return false;
  throw new ConfigError(setting, `expected true/false (or 1/0), got "${value}"`);
}

export function parseIntegerSetting(setting: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(setting, `expected an integer from ${min} to ${max}, got "${value}"`);
  }
  return parsed;
}

export function parseUrlSetting(setting: string, value: string | undefined, protocols: string[]): string | undefined {
  const trimmed = nonEmpty(value);
  if (trimmed === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    throw new ConfigError(setting, `"${trimmed}" is not a URL; expected ${protocols.map((p) => `${p}//…`).join(' or ')}`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(setting, `expected ${protocols.map((p) => `${p}//…`).join(' or ')}, got "${parsed.protocol}//"`);
  }
  return trimmed;
}

export function databaseSettings(env: Env, flags: { databaseUrl?: string | undefined; dataDir?: string | undefined } = {}): DatabaseSettings {
  return {
    databaseUrl: parseUrlSetting(flags.databaseUrl !== undefined ? '--database-url' : 'DATABASE_URL', flags.databaseUrl ?? env.DATABASE_URL, ['postgres:', 'postgresql:']),
    dataDir: nonEmpty(flags.dataDir) ?? nonEmpty(env.SUPERVISOR_RUNTIME_DATA) ?? DEFAULT_DATA_DIR,
    schema: parseSchemaSetting('SUPERVISOR_RUNTIME_DATABASE_SCHEMA', env.SUPERVISOR_RUNTIME_DATABASE_SCHEMA),
  };
}

function parseSchemaSetting(setting: string, raw: string | undefined): string | undefined {
  const value = nonEmpty(raw);
  if (value === undefined) return undefined;
  if (!isSchemaName(value)) throw new ConfigError(setting, `"${value}" is not a schema name this runtime takes: lower-case letters, digits and _, starting with a letter or _, at most 63`);
  return value;
}

export interface DaemonFlags {
  host?: string | undefined;
  port?: string | undefined;
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  natsUrl?: string | undefined;
  inspect?: boolean | undefined;
  inspectUrl?: string | undefined;
  logLevel?: string | undefined;
  worker?: boolean | undefined;
  llmBaseUrl?: string | undefined;
  llmModel?: string | undefined;
}

export function daemonSettings(env: Env, flags: DaemonFlags = {}): DaemonSettings {
  const logLevel = parseLogLevelSetting(flags.logLevel ? '--log-level' : 'LOG_LEVEL', flags.logLevel ?? env.LOG_LEVEL, 'info');
  const natsUrl = parseUrlSetting(flags.natsUrl !== undefined ? '--nats-url' : 'NATS_URL', flags.natsUrl ?? env.NATS_URL, ['nats:', 'tls:']);
  const host = nonEmpty(flags.host) ?? nonEmpty(env.HOST) ?? DEFAULT_HOST;
  const inspectUrl = parseUrlSetting(flags.inspectUrl !== undefined ? '--inspect-url' : 'SUPERVISOR_RUNTIME_INSPECT_URL', flags.inspectUrl ?? env.SUPERVISOR_RUNTIME_INSPECT_URL, ['ws:', 'wss:']);
  const subjectPrefix = env.SUPERVISOR_RUNTIME_SUBJECT_PREFIX ?? '';
  if (subjectPrefix !== '' && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.$/.test(subjectPrefix)) {
    throw new ConfigError('SUPERVISOR_RUNTIME_SUBJECT_PREFIX', `expected dot-separated tokens ending in a dot (like "staging."), got "${subjectPrefix}"`);
  }
  return {
    ...databaseSettings(env, flags),
    host,
    port: parseIntegerSetting(flags.port !== undefined ? '--port' : 'PORT', flags.port ?? env.PORT, DEFAULT_PORT, 0, 65_535),
    natsUrl,
    subjectPrefix,
    token: nonEmpty(env.SUPERVISOR_RUNTIME_TOKEN),
    // An inspector URL means "inspect there": --inspect-url without --inspect is not silently ignored.
    inspect: flags.inspect === true || inspectUrl !== undefined || parseBooleanSetting('SUPERVISOR_RUNTIME_INSPECT', env.SUPERVISOR_RUNTIME_INSPECT, false),
    inspectUrl,
    heartbeatIntervalMs: parseIntegerSetting('SUPERVISOR_RUNTIME_HEARTBEAT_MS', env.SUPERVISOR_RUNTIME_HEARTBEAT_MS, 15_000, 100, 3_600_000),
    logLevel,
    logPretty: parseBooleanSetting('LOG_PRETTY', env.LOG_PRETTY, process.stdout.isTTY === true),
    daemonId: nonEmpty(env.SUPERVISOR_RUNTIME_DAEMON_ID) ?? `${hostname()}-${process.pid}`,
    ...leaseSettings(env),
    checkpointRetain: parseIntegerSetting('SUPERVISOR_RUNTIME_CHECKPOINT_RETAIN', env.SUPERVISOR_RUNTIME_CHECKPOINT_RETAIN, 50, 1, 1_000_000),
    statementTimeoutMs: parseIntegerSetting('SUPERVISOR_RUNTIME_STATEMENT_TIMEOUT_MS', env.SUPERVISOR_RUNTIME_STATEMENT_TIMEOUT_MS, 10_000, 0, 3_600_000),
    advertiseUrl: parseUrlSetting('SUPERVISOR_RUNTIME_ADVERTISE_URL', env.SUPERVISOR_RUNTIME_ADVERTISE_URL, ['http:', 'https:'])?.replace(/\/+$/, ''),
    restoreConcurrency: parseIntegerSetting('SUPERVISOR_RUNTIME_RESTORE_CONCURRENCY', env.SUPERVISOR_RUNTIME_RESTORE_CONCURRENCY, 128, 1, 256),
    embeddedWorker: flags.worker ?? parseBooleanSetting('SUPERVISOR_RUNTIME_EMBEDDED_WORKER', env.SUPERVISOR_RUNTIME_EMBEDDED_WORKER, natsUrl === undefined),
    worker: workerSettings(env),
    noWorkerWarningMs: parseIntegerSetting('SUPERVISOR_RUNTIME_NO_WORKER_WARNING_MS', env.SUPERVISOR_RUNTIME_NO_WORKER_WARNING_MS, 30_000, 0, 86_400_000),
    llm: llmSettings(env, { baseUrl: flags.llmBaseUrl, model: flags.llmModel }),
    crashPoint: parseCrashPoint(env.SUPERVISOR_RUNTIME_CRASH_POINT),
  };
}

export function leaseSettings(env: Env): { leaseTtlMs: number; leaseRenewIntervalMs: number } {
  const leaseTtlMs = parseIntegerSetting('SUPERVISOR_RUNTIME_LEASE_TTL_MS', env.SUPERVISOR_RUNTIME_LEASE_TTL_MS, 10_000, 1_000, 3_600_000);
  const leaseRenewIntervalMs = parseIntegerSetting('SUPERVISOR_RUNTIME_LEASE_RENEW_MS', env.SUPERVISOR_RUNTIME_LEASE_RENEW_MS, Math.min(3_000, Math.floor(leaseTtlMs / 3)), 100, 3_600_000);
  if (leaseRenewIntervalMs * 2 > leaseTtlMs) {
    throw new ConfigError(
      'SUPERVISOR_RUNTIME_LEASE_RENEW_MS',
      `${leaseRenewIntervalMs} ms leaves no room for a missed renewal within the ${leaseTtlMs} ms lease; use at most half of SUPERVISOR_RUNTIME_LEASE_TTL_MS (a third is the default)`,
    );
  }
  return { leaseTtlMs, leaseRenewIntervalMs };
}

/** Where the client commands (status, questions, answer, spawn) find the daemon, and the token they send. */
export interface ClientSettings {
  url: string;
  token: string | undefined;
  /** How long a command waits for the daemon's answer (SUPERVISOR_RUNTIME_CLIENT_TIMEOUT_MS). */
  timeoutMs?: number;
}

/**
 * The default wait for a daemon's answer: longer than the daemon's own bound on a stalled write (its statement
 * timeout, 10 s, plus its 2 s answer margin), so a command hears the daemon's 503 rather than timing out first.
 */
export const DEFAULT_CLIENT_TIMEOUT_MS = 15_000;

export function clientSettings(env: Env, flags: { url?: string | undefined } = {}): ClientSettings {
  const url = parseUrlSetting(flags.url !== undefined ? '--url' : 'SUPERVISOR_RUNTIME_URL', flags.url ?? env.SUPERVISOR_RUNTIME_URL, ['http:', 'https:']) ?? DEFAULT_URL;
  return {
    url: url.replace(/\/+$/, ''),
    token: nonEmpty(env.SUPERVISOR_RUNTIME_TOKEN),
    timeoutMs: parseIntegerSetting('SUPERVISOR_RUNTIME_CLIENT_TIMEOUT_MS', env.SUPERVISOR_RUNTIME_CLIENT_TIMEOUT_MS, DEFAULT_CLIENT_TIMEOUT_MS, 100, 600_000),
  };
}
