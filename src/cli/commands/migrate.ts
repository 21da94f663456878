// `supervisor-runtime migrate [--status]`: apply pending migrations, or list what is applied.

import type { CliCommand } from '../command.js';
import { databaseSettings } from '../config.js';

export const migrateCommand: CliCommand = {
  name: 'migrate',
  summary: 'apply pending SQL migrations (or --status to list them)',
  help: `Usage: supervisor-runtime migrate [--status] [--database-url URL] [--data-dir DIR]

Applies every pending file of migrations/ in name order, in one transaction under an
advisory lock (a second process migrating at once waits, then applies nothing).
  --status            list every migration and when it was applied; change nothing
  --database-url URL  Postgres to migrate (default: $DATABASE_URL; unset = embedded PGlite)
  --data-dir DIR      PGlite data folder (default: $SUPERVISOR_RUNTIME_DATA or ./.supervisor-runtime)`,
  options: {
    status: { type: 'boolean' },
    'database-url': { type: 'string' },
    'data-dir': { type: 'string' },
  },
  async run({ values }, io) {
    const settings = databaseSettings(io.env, { databaseUrl: values['database-url'] as string | undefined, dataDir: values['data-dir'] as string | undefined });
    // Loaded here so the other commands do not pay for the database drivers.
    const [{ openDatabase }, { migrateToLatest, migrationStatus }] = await Promise.all([import('../../persistence/database.js'), import('../../persistence/migrator.js')]);
    const database = await openDatabase(settings);
    try {
      if (values.status) {
        const status = await migrationStatus(database);
        io.out(`Migrations on ${database.description}:\n`);
        for (const migration of status) {
          io.out(`  ${migration.appliedAt ? 'applied ' + migration.appliedAt.toISOString() : 'pending                 '}  ${migration.name}\n`);
        }
        const pending = status.filter((migration) => !migration.appliedAt).length;
        io.out(pending === 0 ? 'Up to date.\n' : `${pending} pending: run \`supervisor-runtime migrate\`.\n`);
        return 0;
      }
      const result = await migrateToLatest(database);
      if (result.error) {
        io.err(`${result.error.message}\n`);
        return 1;
      }
      for (const name of result.applied) io.out(`applied ${name}\n`);
      io.out(
        result.applied.length === 0
          ? `Nothing to apply: ${result.alreadyApplied.length} migrations already applied on ${database.description}.\n`
          : `Applied ${result.applied.length} migration(s) on ${database.description}.\n`,
      );
      return 0;
    } finally {
      await database.close();
    }
  },
};
