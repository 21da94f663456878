// The command line: dispatches `supervisor-runtime <command>` to one file per command under commands/.

import { parseArgs } from 'node:util';
import { SupervisorRuntimeError } from '../domain/errors.js';
import type { CliCommand, CliIo } from './command.js';
import { answerCommand } from './commands/answer.js';
import { checkCommand } from './commands/check.js';
import { daemonCommand } from './commands/daemon.js';
import { demoCommand } from './commands/demo.js';
import { migrateCommand } from './commands/migrate.js';
import { questionsCommand } from './commands/questions.js';
import { resumeCommand } from './commands/resume.js';
import { forkCommand } from './commands/fork.js';
import { messageCommand, messagesCommand } from './commands/messages.js';
import { spawnCommand } from './commands/spawn.js';
import { statusCommand } from './commands/status.js';
import { askCommand, checkpointsCommand, conversationCommand, eventCommand, tasksCommand, withdrawCommand } from './commands/supervisor-detail.js';
import { workerCommand } from './commands/worker.js';

const commands: CliCommand[] = [
  demoCommand,
  migrateCommand,
  checkCommand,
  daemonCommand,
  statusCommand,
  questionsCommand,
  askCommand,
  answerCommand,
  withdrawCommand,
  spawnCommand,
  eventCommand,
  tasksCommand,
  checkpointsCommand,
  conversationCommand,
  resumeCommand,
  forkCommand,
  messageCommand,
  messagesCommand,
  workerCommand,
];

export function registerCommand(command: CliCommand): void {
  if (!commands.some((existing) => existing.name === command.name)) commands.push(command);
}

function usage(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    'Usage: supervisor-runtime <command> [options]',
    '',
    'Commands:',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Run `supervisor-runtime <command> --help` for the options of one command.',
    '',
  ].join('\n');
}

export async function runCli(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    io.out('supervisor-runtime 0.1.0\n');
    return 0;
  }
  const command = commands.find((candidate) => candidate.name === name);
  if (!command) {
    io.err(`Unknown command "${name}".\n\n${usage()}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${command.help}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.out(`${command.help}\n`);
    return 0;
  }
  if (!command.positionals && parsed.positionals.length > 0) {
    io.err(`Unexpected argument "${parsed.positionals[0]}".\n\n${command.help}\n`);
    return 2;
  }
  try {
    return await command.run({ values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals }, io);
  } catch (error) {
    io.err(`${error instanceof SupervisorRuntimeError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

function defaultIo(): CliIo {
  return { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text), env: process.env };
}
