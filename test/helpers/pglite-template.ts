// PGlite runs initdb every time it starts on nothing (3–9 s on a 2-core machine). The tests start many: one in-memory
// instance per file and a data folder per daemon file. Each now starts from one template cluster, initdb'd once per
// PGlite version and kept in the temp folder, which takes about a second to load. The template is a plain dump of a
// freshly initdb'd cluster (dumpDataDir), so what each test starts on is what initdb would have made.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

// The package does not export its package.json; the installed copy is read for its version.
const packageJson = fileURLToPath(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url));
const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
const TEMPLATE = join(tmpdir(), `supervisor-runtime-pglite-template-${version}.tar`);

let loaded: Promise<Blob> | undefined;

/** The template cluster as a tarball, made on first use (by whichever test process gets there first). */
export function pgliteTemplate(): Promise<Blob> {
  loaded ??= (async () => {
    if (existsSync(TEMPLATE)) return new Blob([readFileSync(TEMPLATE)]);
    const fresh = new PGlite();
    await fresh.waitReady;
    const dump = await fresh.dumpDataDir('none');
    await fresh.close();
    // Written aside and renamed: two processes making it at once each leave a whole file, never half of one.
    const partial = `${TEMPLATE}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, TEMPLATE);
    return dump;
  })();
  return loaded;
}

/** An in-memory PGlite started from the template. */
export async function pgliteFromTemplate(): Promise<PGlite> {
  const pglite = new PGlite({ loadDataDir: await pgliteTemplate() });
  await pglite.waitReady;
  return pglite;
}

/** Fill an empty daemon data folder (SUPERVISOR_RUNTIME_DATA) with the template cluster, as the daemon's own start would. */
export async function seedDataFolder(folder: string): Promise<void> {
  const dataDir = join(folder, 'pgdata');
  mkdirSync(dataDir, { recursive: true });
  const pglite = new PGlite(dataDir, { loadDataDir: await pgliteTemplate() });
  await pglite.waitReady;
  await pglite.close();
}
