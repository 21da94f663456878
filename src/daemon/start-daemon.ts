// The daemon's composition root: database, migrations, transport, runtime and HTTP API, opened in order and closed
// in reverse. It sits above every layer it assembles (runtime, api, the CLI's settings type) and nothing imports it
// but the CLI. It reads no environment; the CLI turns flags and variables into DaemonSettings first.

import { probeInspector } from '../runtime/inspection.js';
import type { FastifyInstance } from 'fastify';
import type { DaemonSettings } from '../cli/config.js';
import { SupervisorRuntimeError, errorText } from '../domain/errors.js';
import { openDatabase, type Database } from '../persistence/database.js';
import { createInProcessBus } from '../transport/in-process-bus.js';
import { TransportUnavailableError } from '../transport/errors.js';
import type { Transport } from '../transport/transport.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import type { MessagingOptions } from '../runtime/messaging.js';
import { createOpenAiDriver } from '../runtime/llm/openai-driver.js';
import { armCrashPoint } from '../runtime/crash-points.js';
import type { SupervisorRuntime } from '../runtime/supervisor-runtime.js';

export interface Daemon {
  readonly runtime: SupervisorRuntime;
  /** Where the HTTP API answers, e.g. http://127.0.0.1:7077. */
  readonly url: string;
  /** Stop accepting requests, let the ones in flight finish, flush queued saves, close transport and database. */
  close(): Promise<void>;
}

/** The HTTP port is taken (usually by another daemon). */
export class PortInUseError extends SupervisorRuntimeError {
  override readonly name = 'PortInUseError';
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    super(`Port ${port} on ${host} is already in use (another supervisor-runtime daemon?). Stop it, or pick another port with --port or PORT.`);
  }
}

/** Try the transport every 2 s until it answers, then start messaging; stop() gives up (shutdown). */
function startMessagingWhenReachable(runtime: SupervisorRuntime, transport: Transport, messaging: MessagingOptions, logger: Logger): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = () => {
    timer = setTimeout(() => {
      if (stopped) return;
      transport
        .start()
        .then(() => (stopped ? undefined : runtime.startMessaging(messaging)))
        .then(
          () => {
            if (!stopped) logger.info({}, 'NATS answers: messaging started, the outbox drains in order');
          },
          () => attempt(),
        );
    }, 2_000);
    timer.unref();
  };
  attempt();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Where actors are sent, for the start log line. */
function inspectorDescription(settings: DaemonSettings): string {
  if (!settings.inspect) return 'off';
  return settings.inspectUrl ? `WebSocket inspector at ${settings.inspectUrl}` : 'Stately Sky (its link is printed by @statelyai/inspect)';
}

/** A URL a client on this machine can use: wildcard addresses are not reachable as such. */
export function daemonUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

function boundPort(server: FastifyInstance, fallback: number): number {
  const address = server.server.address();
  return address && typeof address === 'object' ? address.port : fallback;
}

/** Milliseconds each start step took, for the start log line: where a slow start went. */
export interface StartTimings {
  /** From the process start to startDaemon: Node itself, the module imports, the command line. */
  process: number;
  /** Opening the database; the runtime's and the HTTP server's modules load meanwhile. */
  database: number;
  migrations: number;
  transport: number;
  /** createRuntime and runtime.start(): restore-all, the lease keeper, messaging. */
  runtime: number;
  /** The HTTP server: built, listening and advertised. */
  api: number;
}

export async function startDaemon(settings: DaemonSettings, options: { logger?: Logger } = {}): Promise<Daemon> {
  const timings: StartTimings = { process: Math.round(process.uptime() * 1000), database: 0, migrations: 0, transport: 0, runtime: 0, api: 0 };
  let stepStarted = performance.now();
  const stepDone = (step: Exclude<keyof StartTimings, 'process'>) => {
    const now = performance.now();
    timings[step] = Math.round(now - stepStarted);
    stepStarted = now;
  };
  const logger = options.logger ?? createLogger({ level: settings.logLevel, pretty: settings.logPretty });
  // Armed once, before anything runs that passes a point (the crash-point sweep; unset in normal use).
  armCrashPoint(settings.crashPoint);
  if (settings.crashPoint) logger.warn({ crashPoint: settings.crashPoint }, 'crash point armed: this process kills itself with SIGKILL when it gets there');
  const opening = openDatabase({
    databaseUrl: settings.databaseUrl,
    dataDir: settings.dataDir,
    schema: settings.schema,
    statementTimeoutMs: settings.statementTimeoutMs,
    onBackgroundError: (error) => logger.warn({ err: errorText(error) }, 'idle database connection failed; it will be replaced'),
  });
  // Its failure is thrown below, once the modules are loaded; this only keeps it from counting as unhandled meanwhile.
  opening.catch(() => undefined);
  // The rest loads while the database opens: PGlite reads its files and compiles its WebAssembly off the main thread.
  let modules;
  try {
    modules = await Promise.all([import('../persistence/migrator.js'), import('../runtime/supervisor-runtime.js'), import('../api/server.js')]);
  } catch (error) {
    await opening.then((database) => database.close()).catch(() => undefined);
    throw error;
  }
  const [{ migrateOrThrow }, { createRuntime }, { createApiServer }] = modules;
  const database: Database = await opening;
  let transport: Transport | undefined;
  let runtime: SupervisorRuntime | undefined;
  stepDone('database');
  try {
    await migrateOrThrow(database);
    stepDone('migrations');
    const transportLogger = logger.child({ component: 'transport' });
    // The NATS client is loaded only when NATS_URL asks for it: the embedded default never pays for its imports.
    transport = settings.natsUrl?.trim()
      ? (await import('../transport/nats-transport.js')).createNatsTransport({ servers: settings.natsUrl.trim(), subjectPrefix: settings.subjectPrefix, name: settings.daemonId, logger: transportLogger })
      : createInProcessBus({ subjectPrefix: settings.subjectPrefix, logger: transportLogger });
    // NATS down at start is an outage like any other: restore and serve now (the outbox keeps every message), and
    // start messaging when it answers.
    const transportUp = await transport.start().then(
      () => true,
      (error: unknown) => {
        if (!(error instanceof TransportUnavailableError)) throw error;
        logger.warn({ err: errorText(error) }, 'NATS is not reachable: serving and restoring without it; messages wait in the outbox until it answers');
        return false;
      },
    );
    stepDone('transport');
    runtime = createRuntime({
      database,
      transport,
      logger,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      subjectPrefix: settings.subjectPrefix,
      daemonId: settings.daemonId,
      leases: { ttlMs: settings.leaseTtlMs, renewIntervalMs: settings.leaseRenewIntervalMs },
      checkpointRetention: { keep: settings.checkpointRetain },
      inspect: settings.inspect ? (settings.inspectUrl ? { url: settings.inspectUrl } : 'sky') : false,
      defaultDriver: 'manual',
      drivers: settings.llm ? [createOpenAiDriver({ ...settings.llm, logger: logger.child({ component: 'llm' }) })] : [],
    });

    // Restoration before the API opens: every supervisor that runs nowhere is claimed and back before anyone can talk
    // to it; then messaging, then the claim rounds that take over from daemons that die later.
    const messaging = {
      embeddedWorker: settings.embeddedWorker,
      worker: settings.worker,
      taskWorkerWatch: settings.noWorkerWarningMs > 0 ? { graceMs: settings.noWorkerWarningMs, intervalMs: Math.min(5_000, settings.noWorkerWarningMs) } : (false as const),
    };
    await runtime.start({ restoreConcurrency: settings.restoreConcurrency, messaging: transportUp ? messaging : false });
    const messagingRetry = transportUp ? null : startMessagingWhenReachable(runtime, transport, messaging, logger);
    stepDone('runtime');

    const loopback = isLoopbackHost(settings.host);
    const server = await createApiServer(runtime, { token: settings.token, loopbackOnly: loopback, logger: logger.child({ component: 'api' }) });
    try {
      await server.listen({ host: settings.host, port: settings.port });
    } catch (error) {
      await server.close();
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(settings.host, settings.port);
      throw error;
    }
    const url = daemonUrl(settings.host, boundPort(server, settings.port));
    if (!loopback && !settings.token) {
      logger.warn(
        { host: settings.host, port: boundPort(server, settings.port) },
        'listening beyond this machine without a token: anyone who can reach it can drive every supervisor; set SUPERVISOR_RUNTIME_TOKEN',
      );
    }
    // Other daemons send requests for supervisors this one owns here (behind a proxy or on 0.0.0.0: the advertised URL).
    try {
      await runtime.advertise(settings.advertiseUrl ?? url);
    } catch (error) {
      await server.close();
      throw error;
    }
    stepDone('api');
    logger.info({ url, startMs: timings, listen: `${settings.host}:${boundPort(server, settings.port)}`, database: database.description, transport: transport.kind, daemonId: settings.daemonId, leaseTtlMs: settings.leaseTtlMs, inspector: inspectorDescription(settings), auth: settings.token ? 'bearer token' : 'none', llm: settings.llm ? `${settings.llm.model} at ${settings.llm.baseUrl}` : 'off' }, 'daemon started');

    if (settings.inspect && settings.inspectUrl) {
      const inspectUrl = settings.inspectUrl;
      // Not awaited: the daemon serves at once; one line says when nothing listens where actors are sent.
      void probeInspector(inspectUrl).then((problem) => {
        if (problem) logger.warn({ inspectUrl, problem }, 'the inspector does not answer; actors are sent once it does (start it, or drop --inspect-url)');
      });
    }

    const started = runtime;
    let closing: Promise<void> | undefined;
    return {
      runtime: started,
      url,
      close() {
        closing ??= (async () => {
          // Requests first: in-flight ones finish and commit; new ones are refused while the saves below flush.
          await server.close();
          messagingRetry?.stop();
          await started.shutdown();
          logger.info({ url }, 'daemon stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    // A half-started daemon must not keep the data folder locked or connections open.
    if (runtime) await runtime.shutdown().catch(() => undefined);
    else {
      await transport?.close().catch(() => undefined);
      await database.close().catch(() => undefined);
    }
    throw error;
  }
}
