// What a CLI command is: a name, its help text, its option spec and a run function that returns the exit code.

import type { ParseArgsConfig } from 'node:util';
import type { Env } from './config.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Env;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CliCommand {
  name: string;
  summary: string;
  /** Usage line and details shown by `--help`. */
  help: string;
  options: OptionSpec;
  /** Allows positional arguments (checked by the command itself). */
  positionals?: boolean;
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }, io: CliIo): Promise<number>;
}
