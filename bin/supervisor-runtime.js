#!/usr/bin/env node
// Entry point of the `supervisor-runtime` command; the code is compiled to dist/ by `npm run build` (run by npm ci).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('supervisor-runtime is not built yet: run `npm run build` (npm ci does it for you) and try again.\n');
  process.exit(1);
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
