// Finds files shipped with the package (migrations/) whether running from src/ under vitest or from dist/ after a build.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'supervisor-runtime') return (cached = dir);
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the supervisor-runtime package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export function migrationsFolder(): string {
  return join(packageRoot(), 'migrations');
}
