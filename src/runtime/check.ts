// The restoration dry-run: for every stored supervisor (or the ones named), what the restoration protocol would do
// with it now — restore it as stored, fall back to a checkpoint, or start it fresh — and what it would warn about,
// read with the same validation guards and reconciliation the restorer runs. It claims nothing and writes nothing, so
// an operator can run a new version's check against the database before that version's daemons start.

import { isUuid } from '../domain/ids.js';
import { isTerminalState, isSupervisorState } from '../domain/supervisor-state.js';
import type { SupervisorSnapshot } from '../machines/supervisor-machine.js';
import type { Executor } from '../persistence/supervisors/records.js';
import { listSupervisorOwners, type TaskRecord } from '../persistence/supervisor-repository.js';
import { loadMany, newestValidCheckpoint, reconcileOpenWork, validateRow } from './restoration.js';

/** What the restoration protocol would do with a supervisor (not_found: the id names no stored supervisor). */
export type CheckVerdict = 'restore' | 'restore_from_checkpoint' | 'start_fresh' | 'not_found';

export interface SupervisorCheck {
  supervisorId: string;
  name: string | null;
  /** The row's state column as stored. */
  state: string | null;
  owner: string | null;
  epoch: number | null;
  /** The owner's lease is current: it runs the supervisor now, and the verdict is what a takeover would do. */
  ownerLive: boolean;
  /** Completed or failed: restore-all leaves it where it is; the verdict is what a resume would do. */
  finished: boolean;
  verdict: CheckVerdict;
  /** The checkpoint a restore would fall back to (verdict restore_from_checkpoint). */
  checkpointSeq: number | null;
  /** Why the stored row does not validate (empty when it does). */
  errors: string[];
  /** What the restoration would warn about: validation, open work the tables know better, conversation entries. */
  warnings: string[];
}

export interface CheckReport {
  checked: number;
  restore: number;
  fromCheckpoint: number;
  startFresh: number;
  notFound: number;
  supervisors: SupervisorCheck[];
}

export interface CheckOptions {
  /** Check only these ids (in this order); unknown ones come back as not_found. Default: every stored supervisor. */
  supervisorIds?: readonly string[];
  /** Supervisors read per round of queries (default 250). */
  batchSize?: number;
}

/** Read-only: what restoring each supervisor would do now. */
export async function checkStoredStates(db: Executor, options: CheckOptions = {}): Promise<CheckReport> {
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 250));
  const report: CheckReport = { checked: 0, restore: 0, fromCheckpoint: 0, startFresh: 0, notFound: 0, supervisors: [] };
  const record = (entry: SupervisorCheck) => {
    report.checked += 1;
    if (entry.verdict === 'restore') report.restore += 1;
    else if (entry.verdict === 'restore_from_checkpoint') report.fromCheckpoint += 1;
    else if (entry.verdict === 'start_fresh') report.startFresh += 1;
    else report.notFound += 1;
    report.supervisors.push(entry);
  };
  if (options.supervisorIds) {
    const ids = [...new Set(options.supervisorIds.map((id) => id.toLowerCase()))];
    for (let first = 0; first < ids.length; first += batchSize) {
      const page = ids.slice(first, first + batchSize);
      // An id that is no UUID names nothing stored (and would fail the uuid comparison in the queries).
      const queryable = page.filter(isUuid);
      const owners = new Map((await listSupervisorOwners(db, { ids: queryable })).map((row) => [row.id, row]));
      const checked = new Map((await checkBatch(db, queryable, owners)).map((entry) => [entry.supervisorId, entry]));
      for (const id of page) record(checked.get(id) ?? notFound(id, 'not a UUID, so no stored supervisor has it'));
    }
    return report;
  }
  let after: string | undefined;
  for (;;) {
    const page = await listSupervisorOwners(db, { ...(after !== undefined ? { after } : {}), limit: batchSize });
    if (page.length === 0) break;
    for (const entry of await checkBatch(db, page.map((row) => row.id), new Map(page.map((row) => [row.id, row])))) record(entry);
    if (page.length < batchSize) break;
    after = page[page.length - 1]?.id;
  }
  return report;
}

function notFound(supervisorId: string, why: string): SupervisorCheck {
  return { supervisorId, name: null, state: null, owner: null, epoch: null, ownerLive: false, finished: false, verdict: 'not_found', checkpointSeq: null, errors: [], warnings: [why] };
}

async function checkBatch(db: Executor, ids: readonly string[], owners: ReadonlyMap<string, { owner: string | null; epoch: number; ownerLive: boolean }>): Promise<SupervisorCheck[]> {
  const loaded = await loadMany(db, ids);
  const entries: SupervisorCheck[] = [];
  for (const id of ids) {
    const load = loaded.get(id);
    const raw = load?.raw ?? null;
    const owner = owners.get(id);
    const base = { supervisorId: id, owner: owner?.owner ?? null, epoch: owner?.epoch ?? null, ownerLive: owner?.ownerLive ?? false, checkpointSeq: null, errors: [], warnings: [] };
    if (!load || !raw) {
      entries.push(notFound(id, 'no stored state: a resume with startFreshIfMissing would start a fresh supervisor under this id'));
      continue;
    }
    const finished = isSupervisorState(raw.state) && isTerminalState(raw.state);
    const taskRows: TaskRecord[] = [...load.taskRows];
    const { outcome, snapshot: fromRow } = validateRow(raw, taskRows);
    const entry: SupervisorCheck = { ...base, name: raw.name, state: raw.state, finished, verdict: 'restore', errors: [...outcome.result.errors], warnings: [] };
    let snapshot: SupervisorSnapshot | null = fromRow;
    if (fromRow) {
      entry.warnings.push(...outcome.result.warnings);
    } else {
      const found = await newestValidCheckpoint(db, id, taskRows);
      if (found) {
        entry.verdict = 'restore_from_checkpoint';
        entry.checkpointSeq = found.checkpoint.seq;
        entry.warnings.push(`stored state invalid; would restore from checkpoint ${found.checkpoint.seq} (${found.checkpoint.reason})`, ...found.warnings);
        snapshot = found.snapshot;
      } else {
        entry.verdict = 'start_fresh';
        entry.warnings.push('no valid checkpoint: would start fresh (the stored row is copied to supervisor_quarantine, its pending questions withdrawn and unfinished tasks failed; checkpoints are kept)');
      }
    }
    if (snapshot) {
      const reconciled = await reconcileOpenWork(db, id, snapshot, load.pendingRows, taskRows);
      entry.warnings.push(...reconciled.warnings);
      const context = reconciled.snapshot.context;
      for (const question of context.pendingQuestions.filter((candidate) => load.waitingAnswers.includes(candidate.id))) {
        entry.warnings.push(`question ${question.id} has an answer waiting in the inbox: applied after the restore, not delivered again`);
      }
      if (load.conversationStored > context.conversationLength) {
        entry.warnings.push(`${load.conversationStored - context.conversationLength} conversation entries are newer than the restored state; kept`);
      }
      const restoredState = String(reconciled.snapshot.value);
      if (!(isSupervisorState(restoredState) && isTerminalState(restoredState))) {
        for (const task of context.tasks.filter((candidate) => candidate.status === 'running')) {
          const row = taskRows.find((candidate) => candidate.id === task.id);
          if (row?.status === 'completed') entry.warnings.push(`task ${task.id} completed while nobody ran the supervisor: its result would be applied`);
          if (row?.status === 'failed') entry.warnings.push(`task ${task.id} failed while nobody ran the supervisor: its failure would be applied`);
        }
      }
    }
    entries.push(entry);
  }
  return entries;
}
