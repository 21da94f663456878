// `supervisor-runtime daemon`: run the runtime and its HTTP API until SIGTERM or SIGINT, then stop in order.

import { errorText } from '../../domain/errors.js';
import { createLogger, type Logger } from '../../runtime/logger.js';
import type { Daemon } from '../../daemon/start-daemon.js';
import type { CliCommand } from '../command.js';
import { daemonSettings } from '../config.js';

/** After a signal the daemon has this long to finish requests and saves before it is forced out (exit 1). */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Resolves with the exit code once a signal arrived and the daemon closed (or exits the process when it cannot). */
function stopOnSignal(started: Promise<Daemon>, logger: Logger): { stopped: Promise<number>; dispose(): void } {
  let stopping = false;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once without waiting for saves');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutting down: refusing new requests, flushing saves');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'daemon did not stop in time; forcing exit');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    // A signal during startup waits for the start to finish, so the data folder and connections are closed properly.
    void started
      .then((daemon) => daemon.close())
      .then(
        () => 0,
        (error: unknown) => {
          logger.error({ err: errorText(error) }, 'shutdown failed');
          return 1;
        },
      )
      .then((code) => {
        clearTimeout(force);
        dispose();
        // A handle some library forgot to close must not keep a stopped daemon alive.
        setTimeout(() => process.exit(code), 1_000).unref();
        resolveStopped(code);
      });
  };
  const dispose = () => {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return { stopped, dispose };
}

export const daemonCommand: CliCommand = {
  name: 'daemon',
  summary: 'run the runtime and its HTTP API (embedded PGlite + in-process bus unless configured)',
  help: `Usage: supervisor-runtime daemon [options]

Opens the database (applying pending migrations), starts the transport and the runtime,
and serves the HTTP API until SIGTERM or SIGINT; then it stops accepting requests, lets the
ones in flight finish, flushes queued saves, closes its connections and exits 0 (exit 1 if
that takes more than ${SHUTDOWN_TIMEOUT_MS / 1000} s). Logs are JSON lines on stdout (pretty in a terminal or with LOG_PRETTY=true).
  --host HOST          interface to listen on (default: $HOST or 127.0.0.1)
  --port PORT          port to listen on (default: $PORT or 7077; 0 picks a free one)
  --database-url URL   Postgres (default: $DATABASE_URL; unset = embedded PGlite)
  --data-dir DIR       PGlite data folder (default: $SUPERVISOR_RUNTIME_DATA or ./.supervisor-runtime)
  --nats-url URL       NATS JetStream (default: $NATS_URL; unset = in-process bus)
  --inspect            send every actor to the Stately inspector ($SUPERVISOR_RUNTIME_INSPECT)
  --inspect-url URL    WebSocket inspector to use instead of Stately Sky ($SUPERVISOR_RUNTIME_INSPECT_URL)
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default: $LOG_LEVEL or info)
  --llm-base-url URL   OpenAI-compatible API base for driver openai, e.g. http://127.0.0.1:11434/v1
                       ($SUPERVISOR_RUNTIME_LLM_BASE_URL; unset = no openai driver)
  --llm-model NAME     the model it serves ($SUPERVISOR_RUNTIME_LLM_MODEL); the key, if it needs one,
                       only from $SUPERVISOR_RUNTIME_LLM_API_KEY
Set SUPERVISOR_RUNTIME_TOKEN to require \`Authorization: Bearer <token>\` on every request but GET /healthz.`,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'database-url': { type: 'string' },
    'data-dir': { type: 'string' },
    'nats-url': { type: 'string' },
    inspect: { type: 'boolean' },
    'inspect-url': { type: 'string' },
    'log-level': { type: 'string' },
    'llm-base-url': { type: 'string' },
    'llm-model': { type: 'string' },
  },
  async run({ values }, io) {
    const text = (name: string) => values[name] as string | undefined;
    const settings = daemonSettings(io.env, {
      host: text('host'),
      port: text('port'),
      databaseUrl: text('database-url'),
      dataDir: text('data-dir'),
      natsUrl: text('nats-url'),
      inspect: values.inspect === true ? true : undefined,
      inspectUrl: text('inspect-url'),
      logLevel: text('log-level'),
      llmBaseUrl: text('llm-base-url'),
      llmModel: text('llm-model'),
    });
    const logger = createLogger({ level: settings.logLevel, pretty: settings.logPretty });
    // Loaded here so the client commands do not pay for the server's imports.
    const { startDaemon } = await import('../../daemon/start-daemon.js');
    const started = startDaemon(settings, { logger });
    const shutdown = stopOnSignal(started, logger);
    let daemon: Daemon;
    try {
      daemon = await started;
    } catch (error) {
      shutdown.dispose();
      throw error;
    }
    // stderr, so stdout stays pure JSON log lines for whatever collects them.
    io.err(`supervisor-runtime daemon listening at ${daemon.url} (stop with Ctrl-C or SIGTERM)\n`);
    return shutdown.stopped;
  },
};
