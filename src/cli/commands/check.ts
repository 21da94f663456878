// `supervisor-runtime check [id…]`: the restoration dry-run. What restoring each stored supervisor would do now, read
// straight from the database (like migrate) with this version's validation guards and snapshot migrations, changing
// nothing: run it before a new version's daemons start.

import type { CliCommand, CliIo } from '../command.js';
import { clientSettings, databaseSettings, DEFAULT_URL } from '../config.js';
import { DataFolderLockedError, NoEmbeddedDatabaseError } from '../../domain/errors.js';
import { table, truncate } from '../format.js';
import type { CheckReport, SupervisorCheck } from '../../runtime/check.js';
import { clientOptions, daemonClientFor } from './http-client.js';

const VERDICT_TEXT: Record<SupervisorCheck['verdict'], string> = {
  restore: 'restore',
  restore_from_checkpoint: 'from checkpoint',
  start_fresh: 'START FRESH',
  not_found: 'not found',
};

export function formatCheckReport(report: CheckReport): string {
  if (report.checked === 0) return 'No supervisors are stored: nothing to check.\n';
  let text = table(
    ['ID', 'NAME', 'STATE', 'OWNER', 'RESTORE', 'NOTES'],
    report.supervisors.map((entry) => [
      entry.supervisorId,
      truncate(entry.name ?? '-', 30),
      `${entry.state ?? '-'}${entry.finished ? ' (finished)' : ''}`,
      entry.owner ? `${truncate(entry.owner, 24)} (${entry.ownerLive ? 'running' : 'lease ended'})` : '-',
      entry.verdict === 'restore_from_checkpoint' ? `from checkpoint #${entry.checkpointSeq ?? '?'}` : VERDICT_TEXT[entry.verdict],
      entry.errors.length + entry.warnings.length === 0 ? '' : `${entry.errors.length} error(s), ${entry.warnings.length} warning(s)`,
    ]),
  );
  for (const entry of report.supervisors) {
    if (entry.errors.length + entry.warnings.length === 0) continue;
    text += `\n${entry.supervisorId}:\n`;
    for (const error of entry.errors) text += `  error: ${error}\n`;
    for (const warning of entry.warnings) text += `  warning: ${warning}\n`;
  }
  const attention = report.fromCheckpoint + report.startFresh + report.notFound;
  text +=
    `\n${report.checked} checked: ${report.restore} restore as stored, ${report.fromCheckpoint} from a checkpoint, ` +
    `${report.startFresh} would start fresh, ${report.notFound} not found.\n`;
  if (attention > 0) text += 'Nothing was changed. A supervisor whose stored state does not validate is restored as shown above when a daemon claims it (or on `supervisor-runtime resume <id>`).\n';
  return text;
}

function mergeReports(reports: CheckReport[]): CheckReport {
  const merged: CheckReport = { checked: 0, restore: 0, fromCheckpoint: 0, startFresh: 0, notFound: 0, supervisors: [] };
  for (const report of reports) {
    merged.checked += report.checked;
    merged.restore += report.restore;
    merged.fromCheckpoint += report.fromCheckpoint;
    merged.startFresh += report.startFresh;
    merged.notFound += report.notFound;
    merged.supervisors.push(...report.supervisors);
  }
  return merged;
}

function printReport(report: CheckReport, values: Record<string, unknown>, io: CliIo): number {
  io.out(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
  return report.fromCheckpoint + report.startFresh + report.notFound > 0 ? 1 : 0;
}

/** Why the database could not be opened here, in check's words (what to pass instead), or null for any other error. */
function openRefusal(error: unknown, io: CliIo): string | null {
  let url = DEFAULT_URL;
  try {
    url = clientSettings(io.env, {}).url;
  } catch {
    // A bad SUPERVISOR_RUNTIME_URL is reported by the command that uses it; here the default stands in.
  }
  if (error instanceof NoEmbeddedDatabaseError) {
    return (
      `There is no database at ${error.folder}, and check created none (it changes nothing). Point it at the database to check: ` +
      `--data-dir with the daemon's data folder, --database-url with its Postgres, or --url ${url} to ask a running daemon.\n`
    );
  }
  if (error instanceof DataFolderLockedError) {
    return (
      `The embedded database in ${error.folder} is in use by process ${error.holderPid}, a running daemon most likely: ` +
      `check a running daemon through its API with \`supervisor-runtime check --url ${url}\` (it checks with its own guards), or stop it and check again.\n`
    );
  }
  return null;
}

export const checkCommand: CliCommand = {
  name: 'check',
  summary: 'dry-run the restoration of stored supervisors: what restoring each would do, changing nothing',
  help: `Usage: supervisor-runtime check [id...] [--json] [--database-url URL | --data-dir DIR | --url URL]

For every stored supervisor (or the ids given), runs this version's restoration guards and
snapshot migrations over its stored row, walks back through its checkpoints when the row is
invalid, and reconciles its open work with the question and task tables, as a restore would,
without claiming or writing anything. It prints the verdict (restore / from checkpoint #N /
start fresh / not found) with every error and warning. Exit code 0 when every supervisor
would restore as stored, 1 when any would not (or is not found), so a deploy can gate on it.
  --json              the report as JSON
  --database-url URL  Postgres to read (default: $DATABASE_URL; unset = embedded PGlite)
  --data-dir DIR      PGlite data folder (default: $SUPERVISOR_RUNTIME_DATA or ./.supervisor-runtime);
                      one without a database is refused, never created; a running daemon holds
                      its folder: ask that daemon with --url instead
  --url URL           ask the daemon at URL (GET /check) instead of reading the database here; it
                      checks with its own version's guards`,
  options: {
    ...clientOptions,
    json: { type: 'boolean' },
    'database-url': { type: 'string' },
    'data-dir': { type: 'string' },
  },
  positionals: true,
  async run({ values, positionals }, io) {
    if (typeof values.url === 'string') {
      const client = daemonClientFor(io, values);
      const reports = positionals.length === 0 ? [await client.get<CheckReport>('/check')] : await Promise.all(positionals.map((id) => client.get<CheckReport>(`/supervisors/${encodeURIComponent(id)}/check`)));
      return printReport(mergeReports(reports), values, io);
    }
    const settings = databaseSettings(io.env, { databaseUrl: values['database-url'] as string | undefined, dataDir: values['data-dir'] as string | undefined });
    const [{ openDatabase }, { migrationStatus }, { checkStoredStates }] = await Promise.all([
      import('../../persistence/database.js'),
      import('../../persistence/migrator.js'),
      import('../../runtime/check.js'),
    ]);
    let database: Awaited<ReturnType<typeof openDatabase>>;
    try {
      // mustExist: check changes nothing, so a folder without a database stays without one (no folder, no initdb).
      database = await openDatabase({ ...settings, mustExist: true });
    } catch (error) {
      const refusal = openRefusal(error, io);
      if (refusal === null) throw error;
      io.err(refusal);
      return 1;
    }
    try {
      const pending = (await migrationStatus(database)).filter((migration) => !migration.appliedAt);
      if (pending.length > 0) {
        io.err(
          `${database.description} lacks ${pending.length} migration(s) this version needs (${pending.map((migration) => migration.name).join(', ')}): ` +
            'run `supervisor-runtime migrate` first, then check again.\n',
        );
        return 1;
      }
      return printReport(await checkStoredStates(database.db, positionals.length > 0 ? { supervisorIds: positionals } : {}), values, io);
    } finally {
      await database.close();
    }
  },
};
