// `supervisor-runtime worker`: runs the sample task worker against NATS until SIGTERM or SIGINT.

import { createLogger } from '../../runtime/logger.js';
import type { TaskReport } from '../../runtime/task-worker.js';
import type { CliCommand, CliIo } from '../command.js';
import { ConfigError, parseLogLevelSetting, parseUrlSetting, workerSettings, type WorkerSettings } from '../config.js';


export interface WorkerCommandSettings extends WorkerSettings {
  natsUrl: string;
  subjectPrefix: string;
}

export function workerCommandSettings(values: Record<string, string | boolean | string[] | undefined>, env: CliIo['env']): WorkerCommandSettings {
  const flagUrl = values['nats-url'] as string | undefined;
  const natsUrl = parseUrlSetting(flagUrl !== undefined ? '--nats-url' : 'NATS_URL', flagUrl ?? env.NATS_URL, ['nats:', 'tls:']);
  if (natsUrl === undefined) {
    throw new ConfigError(
      'NATS_URL',
      'the worker needs NATS: set NATS_URL or pass --nats-url nats://host:4222 (the same server the daemon uses). ' +
        'On the embedded default (no NATS_URL) the daemon runs a task worker in-process, so no separate worker is needed.',
    );
  }
  // Durations and failure share are read exactly as the daemon reads them for its embedded worker (flags win).
  const worker = workerSettings(env, {
    minMs: values['min-ms'] as string | undefined,
    maxMs: values['max-ms'] as string | undefined,
    failureRate: values['failure-rate'] as string | undefined,
  });
  // Same variable as the daemon, so both agree on subjects; the transport rejects a malformed prefix by name.
  return { ...worker, natsUrl, subjectPrefix: env.SUPERVISOR_RUNTIME_SUBJECT_PREFIX ?? '' };
}

/** Resolves with the name of the first SIGTERM or SIGINT. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** The command's body; `until` decides when to stop (signals in the CLI, a promise in tests). */
export async function runWorker(settings: WorkerCommandSettings, io: CliIo, until: Promise<string>): Promise<number> {
  const level = parseLogLevelSetting('LOG_LEVEL', io.env.LOG_LEVEL, 'warn');
  // Warnings and errors go to stderr as JSON; stdout carries the one line per task.
  const logger = createLogger({ level, pretty: false, destination: process.stderr });
  // Loaded here, not at the top: every command (the daemon's start included) imports this file.
  const [{ createNatsTransport }, { startTaskWorker }] = await Promise.all([import('../../transport/nats-transport.js'), import('../../runtime/task-worker.js')]);
  const transport = createNatsTransport({ servers: settings.natsUrl, subjectPrefix: settings.subjectPrefix, name: 'supervisor-runtime-worker', logger });
  await transport.start();
  try {
    const worker = await startTaskWorker({
      transport,
      subjectPrefix: transport.subjectPrefix,
      logger,
      minDurationMs: settings.minDurationMs,
      maxDurationMs: settings.maxDurationMs,
      failureRate: settings.failureRate,
      onTaskFinished: (report: TaskReport) => {
        const outcome = report.duplicate ? `${report.outcome} (already reported)` : report.outcome;
        io.out(`task ${report.taskId} ${outcome} in ${report.durationMs} ms (supervisor ${report.supervisorId}): ${report.description}\n`);
      },
    });
    io.out(
      `worker taking tasks from ${transport.subjectPrefix}tasks.spawn on ${settings.natsUrl} ` +
        `(${settings.minDurationMs}-${settings.maxDurationMs} ms, failure rate ${settings.failureRate}); stop with Ctrl-C\n`,
    );
    const signal = await until;
    await worker.stop();
    const stats = worker.stats();
    io.out(`${signal}: worker stopped after ${stats.completed} completed and ${stats.failed} failed task(s)\n`);
    return 0;
  } finally {
    await transport.close();
  }
}

export const workerCommand: CliCommand = {
  name: 'worker',
  summary: 'run the sample task worker against NATS (simulated tasks with progress)',
  help: `Usage: supervisor-runtime worker [--nats-url URL] [--min-ms N] [--max-ms N] [--failure-rate 0..1]

Takes task spawns from <prefix>tasks.spawn, simulates the work, and publishes progress and then
completed or failed on <prefix>tasks.<taskId>.events. Several workers share one durable consumer, so
each task goes to one of them; a worker that dies hands its tasks to the others. Stops on SIGTERM/SIGINT.
  --nats-url URL      NATS with JetStream (default: $NATS_URL; required: on the embedded default
                      the daemon runs a worker in-process instead)
  --min-ms N          shortest simulated task in ms (default 300)
  --max-ms N          longest simulated task in ms (default 1500)
  --failure-rate R    share of tasks that fail, 0 to 1 (default 0)
Subjects use $SUPERVISOR_RUNTIME_SUBJECT_PREFIX, like the daemon.`,
  options: {
    'nats-url': { type: 'string' },
    'min-ms': { type: 'string' },
    'max-ms': { type: 'string' },
    'failure-rate': { type: 'string' },
  },
  async run({ values }, io) {
    const settings = workerCommandSettings(values, io.env);
    return runWorker(settings, io, untilSignal());
  },
};
