// Typed reads and writes of supervisor state: each function is one SQL statement (one round trip) unless it says otherwise.

import { sql, type Kysely, type Selectable } from 'kysely';
import type { ConversationEntry } from '../domain/conversation.js';
import { InvalidSnapshotError, InvalidSupervisorDataError, SupervisorNotFoundError, SupervisorRuntimeError } from '../domain/errors.js';
import type { PendingQuestion } from '../domain/pending-question.js';
import type { RestorationSource, SupervisorRestorationContext } from '../domain/restoration.js';
import { isTaskStatus, type TaskStatus } from '../domain/spawned-task.js';
import { isSupervisorState, SUPERVISOR_STATES, type SupervisorState } from '../domain/supervisor-state.js';
import { withDatabaseErrors } from './database-errors.js';
import { checkPendingQuestion, checkProgress, parsePendingQuestions, toIso } from './row-parsers.js';
import type { DatabaseSchema, SupervisorStatesTable } from './schema.js';

export type Executor = Kysely<DatabaseSchema>;

/** The detailed state of one supervisor, as the API and the CLI show it. */
export interface SupervisorDetailedState {
  id: string;
  name: string;
  state: SupervisorState;
  phase: string;
  currentActivity: string | null;
  progress: number;
  errorMessage: string | null;
  spawnedTaskIds: string[];
  pendingQuestions: PendingQuestion[];
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
  lastHeartbeat: string | null;
  owner: string | null;
  conversationRef: string | null;
  conversationLength: number;
  step: number;
  checkpointSeq: number;
  machineVersion: number | null;
  driver: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A task row the full save writes with the state that spawned or finished it. */
export interface TaskWrite {
  id: string;
  description: string;
  status: TaskStatus;
  progress: number;
  result: string | null;
  error: string | null;
  finishedAt: string | null;
}

/** An outbound message written in the same statement as its save point, relayed later. */
export interface OutboxWrite {
  subject: string;
  payload: unknown;
  /** Stable effect id; also the transport's dedup id. */
  msgId: string;
}

export interface FullSaveInput {
  supervisorId: string;
  name: string;
  state: SupervisorState;
  phase: string;
  currentActivity: string | null;
  progress: number;
  errorMessage: string | null;
  spawnedTaskIds: string[];
  pendingQuestions: PendingQuestion[];
  restorationCount: number;
  lastRestoredAt: string | null;
  restorationSource: string | null;
  lastHeartbeat: string | null;
  conversationLength: number;
  /** The persisted XState snapshot (plain JSON). */
  snapshot: unknown;
  machineVersion: number;
  /** Monotonic transition count; the write is refused when the row already holds this step or a later one. */
  step: number;
  /** Why this checkpoint exists: `task_spawned`, `question_asked`, `phase_changed`, … */
  reason: string;
  conversation?: ConversationEntry[];
  tasks?: TaskWrite[];
  outbox?: OutboxWrite[];
  owner?: string | null;
  /** The agent driver's name; kept when omitted. */
  driver?: string | null;
}

export interface FullSaveResult {
  checkpointSeq: number;
}

/** The row already holds a later step: an earlier state must never overwrite it. */
export class StaleWriteError extends SupervisorRuntimeError {
  override readonly name = 'StaleWriteError';
  constructor(supervisorId: string, step: number) {
    super(
      `Supervisor ${supervisorId}: refusing to write step ${step} because the stored row is already at that step or later. ` +
        'Another writer got there first; reload the supervisor (POST /supervisors/:id/resume) instead of retrying.',
      supervisorId,
    );
  }
}

export interface CheckpointRecord {
  supervisorId: string;
  seq: number;
  step: number;
  reason: string;
  state: SupervisorState;
  snapshot: unknown;
  machineVersion: number;
  createdAt: string;
}

export interface TaskRecord {
  id: string;
  supervisorId: string;
  description: string;
  status: TaskStatus | 'pending';
  progress: number;
  result: string | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface SpawnedTaskValidation {
  /** Ids that exist in supervisor_tasks for this supervisor, with their status. */
  existing: TaskRecord[];
  /** Ids the supervisor lists that have no task row (or belong to another supervisor). */
  missing: string[];
}

export interface PendingQuestionsSummary {
  supervisorId: string;
  name: string;
  state: SupervisorState;
  phase: string;
  pendingQuestions: PendingQuestion[];
  updatedAt: string;
}

// ---------------------------------------------------------------- validation before any write

function assertState(supervisorId: string, state: unknown): asserts state is SupervisorState {
  if (!isSupervisorState(state)) {
    throw new InvalidSupervisorDataError(supervisorId, 'state', `must be one of ${SUPERVISOR_STATES.join(', ')} (got ${JSON.stringify(state)})`);
  }
}

function assertProgress(supervisorId: string, progress: unknown): void {
  const problem = checkProgress(progress);
  if (problem) throw new InvalidSupervisorDataError(supervisorId, 'progress', problem);
}

function assertQuestion(supervisorId: string, question: unknown): void {
  const problems = checkPendingQuestion(question, 'question');
  if (problems.length > 0) throw new InvalidSupervisorDataError(supervisorId, 'pending question', problems.join('; '));
}

function assertFullSave(input: FullSaveInput): void {
  const id = input.supervisorId;
  assertState(id, input.state);
  assertProgress(id, input.progress);
  if (typeof input.name !== 'string' || input.name.length === 0) throw new InvalidSupervisorDataError(id, 'name', 'must be a non-empty string');
  if (typeof input.phase !== 'string') throw new InvalidSupervisorDataError(id, 'phase', 'must be a string');
  const parsed = parsePendingQuestions(input.pendingQuestions);
  if (!parsed.ok) throw new InvalidSupervisorDataError(id, 'pendingQuestions', parsed.problems.join('; '));
  if (!Array.isArray(input.spawnedTaskIds) || !input.spawnedTaskIds.every((taskId) => typeof taskId === 'string' && taskId.length > 0)) {
    throw new InvalidSupervisorDataError(id, 'spawnedTaskIds', 'must be a list of non-empty strings');
  }
  if (!Number.isSafeInteger(input.step) || input.step < 1) throw new InvalidSupervisorDataError(id, 'step', 'must be a positive integer');
  if (input.snapshot === undefined || input.snapshot === null) throw new InvalidSupervisorDataError(id, 'snapshot', 'is required');
  for (const task of input.tasks ?? []) {
    if (!isTaskStatus(task.status)) throw new InvalidSupervisorDataError(id, `task ${task.id} status`, `must be running, completed or failed`);
    assertProgress(id, task.progress);
  }
}

// ---------------------------------------------------------------- row mapping

type StateRow = Selectable<SupervisorStatesTable>;

function toDetailedState(row: StateRow): SupervisorDetailedState {
  const problems: string[] = [];
  if (!isSupervisorState(row.state)) problems.push(`state ${JSON.stringify(row.state)} is not a known supervisor state`);
  const questions = parsePendingQuestions(row.pending_questions);
  if (!questions.ok) problems.push(...questions.problems);
  if (checkProgress(row.progress)) problems.push(`progress ${checkProgress(row.progress)}`);
  if (problems.length > 0 || !questions.ok) throw new InvalidSnapshotError(row.id, problems);
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    phase: row.phase,
    currentActivity: row.current_activity,
    progress: row.progress,
    errorMessage: row.error_message,
    spawnedTaskIds: row.spawned_task_ids,
    pendingQuestions: questions.value,
    restorationCount: row.restoration_count,
    lastRestoredAt: toIso(row.last_restored_at),
    restorationSource: row.restoration_source,
    lastHeartbeat: toIso(row.last_heartbeat),
    owner: row.owner,
    conversationRef: row.conversation_ref,
    conversationLength: row.conversation_length,
    step: Number(row.step),
    checkpointSeq: Number(row.checkpoint_seq),
    machineVersion: row.machine_version,
    driver: row.driver,
    createdAt: toIso(row.created_at) ?? '',
    updatedAt: toIso(row.updated_at) ?? '',
  };
}

function toTaskRecord(row: Selectable<DatabaseSchema['supervisor_tasks']>): TaskRecord {
  return {
    id: row.id,
    supervisorId: row.supervisor_id,
    description: row.description,
    status: row.status as TaskRecord['status'],
    progress: row.progress,
    result: row.result,
    error: row.error,
    createdAt: toIso(row.created_at) ?? '',
    updatedAt: toIso(row.updated_at) ?? '',
    finishedAt: toIso(row.finished_at),
  };
}

// ---------------------------------------------------------------- writes

/**
 * The full save point's statement, built once per shape: the row UPSERT and its checkpoint always, the conversation,
 * task and outbox inserts only when the step has rows for them (empty CTEs still cost planning and execution).
 * The leading marker names it, so the Postgres seam prepares it once per connection.
 */
const fullSaveStatements = new Map<number, TemplateStringsArray>();

function fullSaveStatement(withConversation: boolean, withTasks: boolean, withOutbox: boolean): TemplateStringsArray {
  const key = (withConversation ? 1 : 0) | (withTasks ? 2 : 0) | (withOutbox ? 4 : 0);
  const cached = fullSaveStatements.get(key);
  if (cached) return cached;
  let next = 21;
  const conversationParam = withConversation ? `$${next++}` : '';
  const tasksParam = withTasks ? `$${next++}` : '';
  const outboxParam = withOutbox ? `$${next++}` : '';
  const text = `/* sr:save_full_${key} */
WITH up AS (
  INSERT INTO supervisor_states AS s (
    id, name, state, phase, current_activity, progress, error_message, spawned_task_ids, pending_questions,
    restoration_count, last_restored_at, restoration_source, last_heartbeat, conversation_length,
    snapshot, machine_version, step, checkpoint_seq, owner, driver, updated_at
  ) VALUES (
    $1::uuid, $2::text, $3::supervisor_state, $4::text, $5::text, $6::integer, $7::text, $8::text[], $9::jsonb,
    $10::integer, $11::timestamptz, $12::text, $13::timestamptz, $14::integer, $15::jsonb, $16::integer, $17::bigint, 1,
    $18::text, $19::text, now()
  )
  ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, state = EXCLUDED.state, phase = EXCLUDED.phase, current_activity = EXCLUDED.current_activity,
    progress = EXCLUDED.progress, error_message = EXCLUDED.error_message, spawned_task_ids = EXCLUDED.spawned_task_ids,
    pending_questions = EXCLUDED.pending_questions, restoration_count = EXCLUDED.restoration_count,
    last_restored_at = EXCLUDED.last_restored_at, restoration_source = EXCLUDED.restoration_source,
    last_heartbeat = COALESCE(EXCLUDED.last_heartbeat, s.last_heartbeat), conversation_length = EXCLUDED.conversation_length,
    snapshot = EXCLUDED.snapshot, machine_version = EXCLUDED.machine_version, step = EXCLUDED.step,
    checkpoint_seq = s.checkpoint_seq + 1, owner = COALESCE(EXCLUDED.owner, s.owner), driver = COALESCE(EXCLUDED.driver, s.driver),
    updated_at = now()
  WHERE s.step < EXCLUDED.step
  RETURNING s.id, s.checkpoint_seq, s.step, s.state, s.snapshot, s.machine_version
),
checkpoint AS (
  INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
  SELECT id, checkpoint_seq, step, $20::text, state, snapshot, machine_version FROM up
  RETURNING seq
)${
    withConversation
      ? `,
conversation AS (
  INSERT INTO supervisor_conversation (supervisor_id, seq, role, content, created_at)
  SELECT up.id, c.seq, c.role, c.content, c.at
  FROM up, jsonb_to_recordset(${conversationParam}::jsonb) AS c(seq integer, role text, content text, at timestamptz)
  ON CONFLICT (supervisor_id, seq) DO NOTHING
)`
      : ''
  }${
    withTasks
      ? `,
tasks AS (
  INSERT INTO supervisor_tasks AS t (id, supervisor_id, description, status, progress, result, error, finished_at)
  SELECT k.id, up.id, k.description, k.status, k.progress, k.result, k.error, k."finishedAt"
  FROM up, jsonb_to_recordset(${tasksParam}::jsonb)
    AS k(id text, description text, status text, progress integer, result text, error text, "finishedAt" timestamptz)
  ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, progress = EXCLUDED.progress, result = EXCLUDED.result, error = EXCLUDED.error,
    finished_at = EXCLUDED.finished_at, updated_at = now()
  -- A task that already finished (a worker may record it directly) never goes back to running.
  WHERE t.supervisor_id = EXCLUDED.supervisor_id AND t.status IN ('pending', 'running')
)`
      : ''
  }${
    withOutbox
      ? `,
outbox AS (
  INSERT INTO supervisor_outbox (supervisor_id, subject, payload, msg_id)
  SELECT up.id, o.subject, o.payload, o.msg_id
  FROM up, jsonb_to_recordset(${outboxParam}::jsonb) AS o(subject text, payload jsonb, msg_id text)
  ON CONFLICT (msg_id) DO NOTHING
)`
      : ''
  }
SELECT seq FROM checkpoint`;
  // Placeholders appear once each, in order, so the text splits into the fragments of a tagged template: Kysely then
  // compiles the same text every time (and plugins still see the statement).
  const fragments = text.split(/\$\d+/);
  const template = Object.assign([...fragments], { raw: [...fragments] }) as unknown as TemplateStringsArray;
  fullSaveStatements.set(key, template);
  return template;
}

/**
 * The full save point: UPSERT the row and append a checkpoint, plus the conversation entries, task rows and outbox
 * messages of the same transition, in ONE statement (so one round trip, atomic on its own). The row is only
 * updated when it holds an earlier step; otherwise nothing at all is written and StaleWriteError is thrown.
 */
export async function saveSupervisorStateFull(db: Executor, input: FullSaveInput): Promise<FullSaveResult> {
  assertFullSave(input);
  const conversation = input.conversation ?? [];
  const tasks = input.tasks ?? [];
  const outbox = input.outbox ?? [];
  const parameters: unknown[] = [
    input.supervisorId,
    input.name,
    input.state,
    input.phase,
    input.currentActivity,
    input.progress,
    input.errorMessage,
    input.spawnedTaskIds,
    JSON.stringify(input.pendingQuestions),
    input.restorationCount,
    input.lastRestoredAt,
    input.restorationSource,
    input.lastHeartbeat,
    input.conversationLength,
    JSON.stringify(input.snapshot),
    input.machineVersion,
    input.step,
    input.owner ?? null,
    input.driver ?? null,
    input.reason,
  ];
  if (conversation.length > 0) parameters.push(JSON.stringify(conversation));
  if (tasks.length > 0) parameters.push(JSON.stringify(tasks));
  if (outbox.length > 0) parameters.push(JSON.stringify(outbox.map((message) => ({ subject: message.subject, payload: message.payload, msg_id: message.msgId }))));
  const statement = fullSaveStatement(conversation.length > 0, tasks.length > 0, outbox.length > 0);
  return withDatabaseErrors('saveSupervisorStateFull', input.supervisorId, async () => {
    const result = await sql<{ seq: string | number }>(statement, ...parameters).execute(db);
    const row = result.rows[0];
    if (!row) throw new StaleWriteError(input.supervisorId, input.step);
    return { checkpointSeq: Number(row.seq) };
  });
}

export interface DetailedStateUpdate {
  state?: SupervisorState;
  currentActivity?: string | null;
  progress?: number;
  errorMessage?: string | null;
}

/** Update any of state, activity, progress and error message. Returns false when the supervisor does not exist. */
export async function updateSupervisorDetailedState(db: Executor, supervisorId: string, update: DetailedStateUpdate): Promise<boolean> {
  if (update.state !== undefined) assertState(supervisorId, update.state);
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  const values: Partial<Record<'state' | 'current_activity' | 'progress' | 'error_message', unknown>> = {};
  if (update.state !== undefined) values.state = update.state;
  if (update.currentActivity !== undefined) values.current_activity = update.currentActivity;
  if (update.progress !== undefined) values.progress = update.progress;
  if (update.errorMessage !== undefined) values.error_message = update.errorMessage;
  if (Object.keys(values).length === 0) throw new InvalidSupervisorDataError(supervisorId, 'update', 'names no field to change');
  return withDatabaseErrors('updateSupervisorDetailedState', supervisorId, async () => {
    const result = await db
      .updateTable('supervisor_states')
      .set({ ...(values as Record<string, never>), updated_at: sql`now()` })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}

/**
 * Record a spawned task: append its id to the row (once) and create its task row (once), in one statement.
 * Returns true when the id was new for this supervisor, false when it was already there (nothing changes).
 */
export async function addSupervisorSpawnedTask(db: Executor, supervisorId: string, taskId: string, description = ''): Promise<boolean> {
  if (typeof taskId !== 'string' || taskId.length === 0) throw new InvalidSupervisorDataError(supervisorId, 'taskId', 'must be a non-empty string');
  return withDatabaseErrors('addSupervisorSpawnedTask', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      WITH up AS (
        UPDATE supervisor_states SET spawned_task_ids = array_append(spawned_task_ids, ${taskId}::text), updated_at = now()
        WHERE id = ${supervisorId} AND NOT (${taskId}::text = ANY (spawned_task_ids))
        RETURNING id
      ), task AS (
        INSERT INTO supervisor_tasks (id, supervisor_id, description, status)
        SELECT ${taskId}, id, ${description}, 'running' FROM up
        ON CONFLICT (id) DO NOTHING
      )
      SELECT id FROM up`.execute(db);
    return result.rows.length > 0;
  });
}

/** Append a pending question unless one with its id is already pending. Returns true when it was added. */
export async function addSupervisorPendingQuestion(db: Executor, supervisorId: string, question: PendingQuestion): Promise<boolean> {
  assertQuestion(supervisorId, question);
  return withDatabaseErrors('addSupervisorPendingQuestion', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_states
      SET pending_questions = pending_questions || jsonb_build_array(${JSON.stringify(question)}::jsonb), updated_at = now()
      WHERE id = ${supervisorId} AND NOT pending_questions @> jsonb_build_array(jsonb_build_object('id', ${question.id}::text))
      RETURNING id`.execute(db);
    return result.rows.length > 0;
  });
}

/** Remove a pending question. Returns false when no question with that id was pending. */
export async function removeSupervisorPendingQuestion(db: Executor, supervisorId: string, questionId: string): Promise<boolean> {
  return withDatabaseErrors('removeSupervisorPendingQuestion', supervisorId, async () => {
    const result = await sql<{ id: string }>`
      UPDATE supervisor_states
      SET pending_questions = (
            SELECT coalesce(jsonb_agg(q ORDER BY ord), '[]'::jsonb)
            FROM jsonb_array_elements(pending_questions) WITH ORDINALITY AS e(q, ord)
            WHERE q ->> 'id' IS DISTINCT FROM ${questionId}::text),
          updated_at = now()
      WHERE id = ${supervisorId} AND pending_questions @> jsonb_build_array(jsonb_build_object('id', ${questionId}::text))
      RETURNING id`.execute(db);
    return result.rows.length > 0;
  });
}

export interface RestorationMark {
  restorationCount: number;
  lastRestoredAt: string;
  restorationSource: RestorationSource;
}

/** Count one more restoration and stamp its time and source. Throws SupervisorNotFoundError for an unknown id. */
export async function markSupervisorRestored(db: Executor, supervisorId: string, source: RestorationSource, at: Date = new Date()): Promise<RestorationMark> {
  return withDatabaseErrors('markSupervisorRestored', supervisorId, async () => {
    const row = await db
      .updateTable('supervisor_states')
      .set((eb) => ({
        restoration_count: eb('restoration_count', '+', 1),
        last_restored_at: at,
        restoration_source: source,
        updated_at: sql`now()`,
      }))
      .where('id', '=', supervisorId)
      .returning(['restoration_count', 'last_restored_at', 'restoration_source'])
      .executeTakeFirst();
    if (!row) throw new SupervisorNotFoundError(supervisorId);
    return { restorationCount: row.restoration_count, lastRestoredAt: toIso(row.last_restored_at) ?? at.toISOString(), restorationSource: source };
  });
}

/** Change the phase. Returns false when the supervisor does not exist. */
export async function updateSupervisorPhase(db: Executor, supervisorId: string, phase: string): Promise<boolean> {
  if (typeof phase !== 'string' || phase.length === 0) throw new InvalidSupervisorDataError(supervisorId, 'phase', 'must be a non-empty string');
  return withDatabaseErrors('updateSupervisorPhase', supervisorId, async () => {
    const result = await db.updateTable('supervisor_states').set({ phase, updated_at: sql`now()` }).where('id', '=', supervisorId).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}

export interface HeartbeatUpdate {
  at?: Date | string;
  currentActivity?: string | null;
  progress?: number;
}

/** The lightweight save point: touches only last_heartbeat, current_activity and progress (no checkpoint, no snapshot). */
export async function updateSupervisorHeartbeatState(db: Executor, supervisorId: string, update: HeartbeatUpdate = {}): Promise<boolean> {
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  return withDatabaseErrors('updateSupervisorHeartbeatState', supervisorId, async () => {
    const result = await db
      .updateTable('supervisor_states')
      .set({
        last_heartbeat: update.at ?? sql<Date>`now()`,
        ...(update.currentActivity !== undefined ? { current_activity: update.currentActivity } : {}),
        ...(update.progress !== undefined ? { progress: update.progress } : {}),
      })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}

// ---------------------------------------------------------------- reads

/** The detailed state, checked; InvalidSnapshotError when the stored row is not the shape the code expects. */
export async function getSupervisorState(db: Executor, supervisorId: string): Promise<SupervisorDetailedState | null> {
  const row = await withDatabaseErrors('getSupervisorState', supervisorId, () =>
    db.selectFrom('supervisor_states').selectAll().where('id', '=', supervisorId).executeTakeFirst(),
  );
  return row ? toDetailedState(row) : null;
}

export interface ListSupervisorsOptions {
  pendingQuestionsOnly?: boolean;
  states?: SupervisorState[];
  limit?: number;
}

/** Supervisors, newest first. A corrupt row does not hide the others: it is listed with state and problems. */
export async function listSupervisors(
  db: Executor,
  options: ListSupervisorsOptions = {},
): Promise<{ supervisors: SupervisorDetailedState[]; invalid: InvalidSnapshotError[] }> {
  const rows = await withDatabaseErrors('listSupervisors', undefined, () => {
    let query = db.selectFrom('supervisor_states').selectAll().orderBy('created_at', 'desc').orderBy('id');
    // A finished supervisor's leftover questions can no longer be answered: they are not "pending" for anyone.
    if (options.pendingQuestionsOnly) query = query.where(sql<boolean>`pending_questions <> '[]'::jsonb`).where('state', 'not in', ['completed', 'failed']);
    if (options.states && options.states.length > 0) query = query.where('state', 'in', options.states);
    return query.limit(options.limit ?? 1000).execute();
  });
  const supervisors: SupervisorDetailedState[] = [];
  const invalid: InvalidSnapshotError[] = [];
  for (const row of rows) {
    try {
      supervisors.push(toDetailedState(row));
    } catch (error) {
      if (error instanceof InvalidSnapshotError) invalid.push(error);
      else throw error;
    }
  }
  return { supervisors, invalid };
}

/** Supervisors with at least one pending question (served by the partial index), oldest update first. */
export async function getSupervisorsWithPendingQuestions(db: Executor): Promise<PendingQuestionsSummary[]> {
  const rows = await withDatabaseErrors('getSupervisorsWithPendingQuestions', undefined, () =>
    db
      .selectFrom('supervisor_states')
      .select(['id', 'name', 'state', 'phase', 'pending_questions', 'updated_at'])
      .where(sql<boolean>`pending_questions <> '[]'::jsonb`)
      .where('state', 'not in', ['completed', 'failed'])
      .orderBy('updated_at')
      .execute(),
  );
  return rows.map((row) => {
    const parsed = parsePendingQuestions(row.pending_questions);
    if (!parsed.ok) throw new InvalidSnapshotError(row.id, parsed.problems);
    return { supervisorId: row.id, name: row.name, state: row.state, phase: row.phase, pendingQuestions: parsed.value, updatedAt: toIso(row.updated_at) ?? '' };
  });
}

/** The raw stored state the restoration protocol validates; null when there is no row. Nothing is trusted here. */
export async function getSupervisorStateForRestoration(db: Executor, supervisorId: string): Promise<SupervisorRestorationContext | null> {
  const row = await withDatabaseErrors('getSupervisorStateForRestoration', supervisorId, () =>
    db
      .selectFrom('supervisor_states')
      // state read as text so an unknown value reaches validation instead of failing the query.
      .select(sql<string>`state::text`.as('state_text'))
      .selectAll()
      .where('id', '=', supervisorId)
      .executeTakeFirst(),
  );
  if (!row) return null;
  return {
    supervisorId: row.id,
    name: row.name,
    state: row.state_text,
    phase: row.phase,
    currentActivity: row.current_activity,
    progress: row.progress,
    errorMessage: row.error_message,
    spawnedTaskIds: row.spawned_task_ids,
    pendingQuestions: row.pending_questions,
    restorationCount: row.restoration_count,
    lastRestoredAt: row.last_restored_at,
    restorationSource: row.restoration_source,
    lastHeartbeat: row.last_heartbeat,
    conversationLength: row.conversation_length,
    snapshot: row.snapshot,
    machineVersion: row.machine_version,
    checkpointSeq: Number(row.checkpoint_seq),
    driver: row.driver,
    step: Number(row.step),
    updatedAt: row.updated_at,
  };
}

/** Ids of supervisors to bring back after a restart: every one not completed or failed. */
export async function listRestorableSupervisorIds(db: Executor): Promise<string[]> {
  const rows = await withDatabaseErrors('listRestorableSupervisorIds', undefined, () =>
    db.selectFrom('supervisor_states').select('id').where('state', 'not in', ['completed', 'failed']).orderBy('created_at').execute(),
  );
  return rows.map((row) => row.id);
}

/** Which of the given task ids exist for this supervisor, with their status; the rest are missing. */
export async function validateSpawnedTasks(db: Executor, supervisorId: string, taskIds: readonly string[]): Promise<SpawnedTaskValidation> {
  if (taskIds.length === 0) return { existing: [], missing: [] };
  const rows = await withDatabaseErrors('validateSpawnedTasks', supervisorId, () =>
    db.selectFrom('supervisor_tasks').selectAll().where('supervisor_id', '=', supervisorId).where('id', 'in', [...taskIds]).execute(),
  );
  const existing = rows.map(toTaskRecord);
  const found = new Set(existing.map((task) => task.id));
  return { existing, missing: taskIds.filter((id) => !found.has(id)) };
}

export async function getTask(db: Executor, taskId: string): Promise<TaskRecord | null> {
  const row = await withDatabaseErrors('getTask', undefined, () => db.selectFrom('supervisor_tasks').selectAll().where('id', '=', taskId).executeTakeFirst());
  return row ? toTaskRecord(row) : null;
}

/** Record a task's outcome directly (a worker with database access); only a running task changes. Returns true when it did. */
export async function recordTaskOutcome(
  db: Executor,
  taskId: string,
  outcome: { status: 'completed' | 'failed'; result?: string | null; error?: string | null },
): Promise<boolean> {
  const result = await withDatabaseErrors('recordTaskOutcome', undefined, () =>
    db
      .updateTable('supervisor_tasks')
      .set({
        status: outcome.status,
        result: outcome.result ?? null,
        error: outcome.error ?? null,
        progress: outcome.status === 'completed' ? 100 : sql<number>`progress`,
        finished_at: sql<Date>`now()`,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', taskId)
      .where('status', 'in', ['pending', 'running'])
      .executeTakeFirst(),
  );
  return Number(result.numUpdatedRows) > 0;
}

function toCheckpoint(row: Selectable<DatabaseSchema['supervisor_checkpoints']>): CheckpointRecord {
  return {
    supervisorId: row.supervisor_id,
    seq: Number(row.seq),
    step: Number(row.step),
    reason: row.reason,
    state: row.state,
    snapshot: row.snapshot,
    machineVersion: row.machine_version,
    createdAt: toIso(row.created_at) ?? '',
  };
}

/** Checkpoints, newest first. */
export async function listCheckpoints(db: Executor, supervisorId: string, options: { limit?: number; beforeSeq?: number } = {}): Promise<CheckpointRecord[]> {
  const rows = await withDatabaseErrors('listCheckpoints', supervisorId, () => {
    let query = db.selectFrom('supervisor_checkpoints').selectAll().where('supervisor_id', '=', supervisorId);
    if (options.beforeSeq !== undefined) query = query.where('seq', '<', options.beforeSeq);
    return query.orderBy('seq', 'desc').limit(options.limit ?? 100).execute();
  });
  return rows.map(toCheckpoint);
}

/** The newest checkpoint with a sequence number below `seq` (pass Infinity for the newest of all); null when none. */
export async function getNewestCheckpointBefore(db: Executor, supervisorId: string, seq: number): Promise<CheckpointRecord | null> {
  const rows = await listCheckpoints(db, supervisorId, { limit: 1, ...(Number.isFinite(seq) ? { beforeSeq: seq } : {}) });
  return rows[0] ?? null;
}

/** Conversation entries in order, from `fromSeq` (default 0). */
export async function getConversation(db: Executor, supervisorId: string, options: { fromSeq?: number; limit?: number } = {}): Promise<ConversationEntry[]> {
  const rows = await withDatabaseErrors('getConversation', supervisorId, () =>
    db
      .selectFrom('supervisor_conversation')
      .selectAll()
      .where('supervisor_id', '=', supervisorId)
      .where('seq', '>=', options.fromSeq ?? 0)
      .orderBy('seq')
      .limit(options.limit ?? 10_000)
      .execute(),
  );
  return rows.map((row) => ({ seq: row.seq, role: row.role as ConversationEntry['role'], content: row.content, at: toIso(row.created_at) ?? '' }));
}

/** Copy the whole row, as stored, into supervisor_quarantine before a fresh start replaces it. Returns false when there is no row. */
export async function quarantineSupervisorRow(db: Executor, supervisorId: string, reason: string): Promise<boolean> {
  const result = await withDatabaseErrors('quarantineSupervisorRow', supervisorId, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_quarantine (supervisor_id, row_data, reason)
      SELECT id, to_jsonb(s.*), ${reason} FROM supervisor_states s WHERE id = ${supervisorId}
      RETURNING supervisor_id AS id`.execute(db),
  );
  return result.rows.length > 0;
}

/** Number of conversation entries stored (the next free seq), whatever a snapshot says. */
export async function countConversation(db: Executor, supervisorId: string): Promise<number> {
  const row = await withDatabaseErrors('countConversation', supervisorId, () =>
    db
      .selectFrom('supervisor_conversation')
      .select(sql<string | number>`coalesce(max(seq) + 1, 0)`.as('n'))
      .where('supervisor_id', '=', supervisorId)
      .executeTakeFirst(),
  );
  return Number(row?.n ?? 0);
}

/** Append outbox rows outside a save point (re-dispatching work the state already records). Existing msg ids are skipped. */
export async function enqueueOutbox(db: Executor, supervisorId: string, messages: OutboxWrite[]): Promise<number> {
  if (messages.length === 0) return 0;
  const rows = JSON.stringify(messages.map((message) => ({ subject: message.subject, payload: message.payload, msg_id: message.msgId })));
  const result = await withDatabaseErrors('enqueueOutbox', supervisorId, () =>
    sql<{ id: string }>`
      INSERT INTO supervisor_outbox (supervisor_id, subject, payload, msg_id)
      SELECT ${supervisorId}, o.subject, o.payload, o.msg_id FROM jsonb_to_recordset(${rows}::jsonb) AS o(subject text, payload jsonb, msg_id text)
      ON CONFLICT (msg_id) DO NOTHING
      RETURNING msg_id AS id`.execute(db),
  );
  return result.rows.length;
}

/**
 * Mark a supervisor interrupted from outside its actor (a restore that failed): state, error message AND the stored
 * snapshot change together, with a checkpoint, so the row stays consistent and the next restore resumes it. A row
 * whose snapshot is not an object only gets the columns. Returns false for an unknown id.
 */
export async function markSupervisorInterrupted(db: Executor, supervisorId: string, reason: string): Promise<boolean> {
  return withDatabaseErrors('markSupervisorInterrupted', supervisorId, async () => {
    const patched = await sql<{ seq: string | number }>`
      WITH up AS (
        UPDATE supervisor_states AS s SET
          state = 'interrupted', error_message = ${reason}::text, step = s.step + 1, checkpoint_seq = s.checkpoint_seq + 1, updated_at = now(),
          snapshot = jsonb_set(
            jsonb_set(jsonb_set(s.snapshot, '{value}', '"interrupted"'), '{context,errorMessage}', to_jsonb(${reason}::text)),
            '{context,interruptedFrom}',
            CASE WHEN s.state = 'interrupted' THEN coalesce(s.snapshot #> '{context,interruptedFrom}', 'null'::jsonb) ELSE to_jsonb(s.state::text) END)
        WHERE s.id = ${supervisorId}::uuid AND jsonb_typeof(s.snapshot) = 'object' AND jsonb_typeof(s.snapshot -> 'context') = 'object'
        RETURNING s.id, s.checkpoint_seq, s.step, s.state, s.snapshot, s.machine_version
      ), checkpoint AS (
        INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
        SELECT id, checkpoint_seq, step, 'restore_failed', state, snapshot, coalesce(machine_version, 1) FROM up
        RETURNING seq
      )
      SELECT seq FROM checkpoint`
      .execute(db)
      // A row the database refuses to patch (its step at the bigint limit, say) still gets the columns below.
      .catch((error: unknown) => {
        if ((error as { code?: unknown }).code === '22003') return { rows: [] };
        throw error;
      });
    if (patched.rows.length > 0) return true;
    const result = await db
      .updateTable('supervisor_states')
      .set({ state: 'interrupted', error_message: reason, updated_at: sql`now()` })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}
