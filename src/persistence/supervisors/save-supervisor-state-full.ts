// The full save point: one statement that writes the state rows, their checkpoints and the conversation, question,
// task and outbox rows of one transition each, for one supervisor or for a group of them (group commit).

import { sql } from 'kysely';
import { DatabaseUnavailableError } from '../../domain/errors.js';
import { classifyDatabaseError } from '../database-errors.js';
import { assertFullSave } from './assertions.js';
import { currentFences } from './current-fences.js';
import { OwnershipLostError } from '../ownership/errors.js';
import { StaleWriteError, type Executor, type FullSaveInput, type FullSaveResult } from './records.js';

/** Which optional child inserts a statement carries (empty CTEs still cost planning and execution). */
interface Shape {
  /** One supervisor: its row and checkpoint as plain parameters (no input CTE to parse them from one jsonb). */
  single: boolean;
  conversation: boolean;
  questions: boolean;
  tasks: boolean;
  outbox: boolean;
  /** A fork's first save point: its lineage row and the copy of its source's conversation. */
  fork: boolean;
  messages: boolean;
}

/** The row's fields as the single form sends them: each placeholder appears once, in this order. */
const SINGLE_COLUMNS = [
  'snapshot', 'id', 'name', 'state', 'phase', 'current_activity', 'progress', 'error_message', 'spawned_task_ids',
  'pending_questions', 'restoration_count', 'last_restored_at', 'restoration_source', 'last_heartbeat',
  'conversation_length', 'machine_version', 'step', 'owner', 'epoch', 'driver', 'reason',
] as const;

/** The columns a task's save point writes while the task is open; a finished row keeps its own. */
const TASK_OUTCOME_COLUMNS = ['status', 'progress', 'result', 'error', 'finished_at'] as const;

const statements = new Map<number, TemplateStringsArray>();

/**
 * The statement for one shape, built once. A group's rows are one jsonb parameter ($1); one supervisor's row is 21
 * plain parameters instead (parsing them out of a jsonb document cost the server about 60 µs of a single save and the
 * client the document's JSON). Then the child rows of the shape, one jsonb parameter each, every row naming its
 * supervisor (`sid`). Children join `up`, so a supervisor whose row the fences refused writes nothing at all. The
 * snapshot is written once, into the checkpoint the row then points to; the row itself stays narrow. The leading
 * marker names the statement, so the Postgres seam prepares it once per connection.
 */
function fullSaveStatement(shape: Shape): TemplateStringsArray {
  const key = (shape.conversation ? 1 : 0) | (shape.questions ? 2 : 0) | (shape.tasks ? 4 : 0) | (shape.outbox ? 8 : 0) | (shape.single ? 16 : 0) | (shape.fork ? 32 : 0) | (shape.messages ? 64 : 0);
  const cached = statements.get(key);
  if (cached) return cached;
  let next = 1;
  const param = () => `$${next++}`;
  // The single form's placeholders, checked against SINGLE_COLUMNS as they are written (the parameters follow it).
  const single = (column: (typeof SINGLE_COLUMNS)[number]) => {
    if (SINGLE_COLUMNS[next - 1] !== column) throw new Error(`save statement: ${column} written out of order`);
    return param();
  };
  const snapshotSource = shape.single
    ? `doc AS (SELECT ${single('snapshot')}::jsonb AS snapshot),\n`
    : `input AS MATERIALIZED (
  SELECT * FROM jsonb_to_recordset(${param()}::jsonb) AS i(
    id uuid, name text, state supervisor_state, phase text, current_activity text, progress integer, error_message text,
    spawned_task_ids text[], pending_questions jsonb, restoration_count integer, last_restored_at timestamptz,
    restoration_source text, last_heartbeat timestamptz, conversation_length integer, snapshot jsonb,
    machine_version integer, step bigint, owner text, epoch bigint, driver text, reason text)
),
`;
  // A row sent without its pending questions takes the snapshot's list (see pendingQuestionsOfRow).
  const rows = shape.single
    ? `  SELECT ${single('id')}::uuid, ${single('name')}::text, ${single('state')}::supervisor_state, ${single('phase')}::text,
    ${single('current_activity')}::text, ${single('progress')}::integer, ${single('error_message')}::text, ${single('spawned_task_ids')}::text[],
    coalesce(${single('pending_questions')}::jsonb, doc.snapshot #> '{context,pendingQuestions}', '[]'::jsonb),
    ${single('restoration_count')}::integer, ${single('last_restored_at')}::timestamptz, ${single('restoration_source')}::text,
    ${single('last_heartbeat')}::timestamptz, ${single('conversation_length')}::integer, ${single('machine_version')}::integer,
    ${single('step')}::bigint, 1, ${single('owner')}::text, coalesce(${single('epoch')}::bigint, 0), ${single('driver')}::text, now()
  FROM doc`
    : `  SELECT id, name, state, phase, current_activity, progress, error_message, spawned_task_ids,
    coalesce(pending_questions, snapshot #> '{context,pendingQuestions}', '[]'::jsonb),
    restoration_count, last_restored_at, restoration_source, last_heartbeat, conversation_length,
    machine_version, step, 1, owner, coalesce(epoch, 0), driver, now()
  FROM input ORDER BY id`;
  const text = `/* sr:save_full_${key} */
WITH ${snapshotSource}up AS (
  INSERT INTO supervisor_states AS s (
    id, name, state, phase, current_activity, progress, error_message, spawned_task_ids, pending_questions,
    restoration_count, last_restored_at, restoration_source, last_heartbeat, conversation_length,
    machine_version, step, checkpoint_seq, owner, epoch, driver, updated_at
  )
${rows}
  ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, state = EXCLUDED.state, phase = EXCLUDED.phase, current_activity = EXCLUDED.current_activity,
    progress = EXCLUDED.progress, error_message = EXCLUDED.error_message, spawned_task_ids = EXCLUDED.spawned_task_ids,
    pending_questions = EXCLUDED.pending_questions, restoration_count = EXCLUDED.restoration_count,
    last_restored_at = EXCLUDED.last_restored_at, restoration_source = EXCLUDED.restoration_source,
    last_heartbeat = COALESCE(EXCLUDED.last_heartbeat, s.last_heartbeat), conversation_length = EXCLUDED.conversation_length,
    machine_version = EXCLUDED.machine_version, step = EXCLUDED.step,
    checkpoint_seq = s.checkpoint_seq + 1, driver = COALESCE(EXCLUDED.driver, s.driver),
    updated_at = now()
  -- The step fence (no older state over a newer one) and the ownership fence (only the owner at its epoch writes).
  -- Without an owner, an epoch fences an edit of an unowned row (still nobody's, not claimed since); neither counts as
  -- epoch 0 (coalesced above), so a raw write only lands on a row nobody ever claimed.
  WHERE s.step < EXCLUDED.step AND CASE
    WHEN EXCLUDED.owner IS NOT NULL THEN s.owner = EXCLUDED.owner AND s.epoch = EXCLUDED.epoch
    WHEN EXCLUDED.epoch IS NOT NULL THEN s.owner IS NULL AND s.epoch = EXCLUDED.epoch
    ELSE true END
  RETURNING s.id, s.checkpoint_seq, s.step, s.state, s.machine_version, s.epoch
),
checkpoint AS (
  INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
  ${
    shape.single
      ? `SELECT up.id, up.checkpoint_seq, up.step, ${single('reason')}::text, up.state, doc.snapshot, up.machine_version FROM up, doc`
      : 'SELECT up.id, up.checkpoint_seq, up.step, i.reason, up.state, i.snapshot, up.machine_version FROM up JOIN input i ON i.id = up.id'
  }
  RETURNING supervisor_id, seq
)${
    shape.conversation
      ? `,
conversation AS (
  INSERT INTO supervisor_conversation (supervisor_id, seq, role, content, created_at)
  SELECT up.id, c.seq, c.role, c.content, c.at
  FROM jsonb_to_recordset(${param()}::jsonb) AS c(sid uuid, seq integer, role text, content text, at timestamptz) JOIN up ON up.id = c.sid
  ON CONFLICT (supervisor_id, seq) DO NOTHING
)`
      : ''
  }${
    shape.questions
      ? `,
questions AS (
  INSERT INTO supervisor_questions AS q (supervisor_id, id, question, choices, context, asked_at, answer, answered_at, withdrawn_at, withdrawn_reason)
  SELECT up.id, k.id, k.question, k.choices, k.context, k."askedAt", k.answer, k."answeredAt", k."withdrawnAt", k."withdrawnReason"
  FROM jsonb_to_recordset(${param()}::jsonb)
    AS k(sid uuid, id text, question text, choices jsonb, context text, "askedAt" timestamptz, answer text, "answeredAt" timestamptz,
         "withdrawnAt" timestamptz, "withdrawnReason" text)
    JOIN up ON up.id = k.sid
  ON CONFLICT (supervisor_id, id) DO UPDATE SET
    answer = EXCLUDED.answer, answered_at = EXCLUDED.answered_at,
    withdrawn_at = EXCLUDED.withdrawn_at, withdrawn_reason = EXCLUDED.withdrawn_reason
  -- The first answer (or withdrawal) wins; an asked question is recorded once.
  WHERE q.answered_at IS NULL AND q.withdrawn_at IS NULL AND (EXCLUDED.answered_at IS NOT NULL OR EXCLUDED.withdrawn_at IS NOT NULL)
)`
      : ''
  }${
    shape.tasks
      ? `,
tasks AS (
  INSERT INTO supervisor_tasks AS t (id, supervisor_id, description, status, progress, result, error, finished_at, applied_step)
  -- A finished task written by a save point is one whose outcome this save point applies (taskFinished): its row
  -- records this step, so a restore from an older checkpoint does not apply the outcome a second time.
  SELECT k.id, up.id, k.description, k.status, k.progress, k.result, k.error, k."finishedAt",
    CASE WHEN k.status IN ('completed', 'failed') THEN up.step END
  FROM jsonb_to_recordset(${param()}::jsonb)
    AS k(sid uuid, id text, description text, status text, progress integer, result text, error text, "finishedAt" timestamptz)
    JOIN up ON up.id = k.sid
  -- Only this supervisor's own row is updated: a task id another supervisor has is no conflict on (id, supervisor_id),
  -- so its insert violates the primary key and the whole save fails (nothing written) instead of skipping the task.
  ON CONFLICT (id, supervisor_id) DO UPDATE SET
    ${TASK_OUTCOME_COLUMNS.map((column) => `${column} = CASE WHEN t.status IN ('pending', 'running') THEN EXCLUDED.${column} ELSE t.${column} END`).join(',\n    ')},
    applied_step = coalesce(t.applied_step, EXCLUDED.applied_step), updated_at = now()
  -- A task that already finished (a worker may record it directly) never goes back to running and keeps the outcome
  -- it recorded; the save point that applies that outcome only marks it applied.
  WHERE t.status IN ('pending', 'running') OR (t.applied_step IS NULL AND EXCLUDED.applied_step IS NOT NULL)
)`
      : ''
  }${
    shape.outbox
      ? `,
outbox AS (
  INSERT INTO supervisor_outbox (supervisor_id, subject, payload, msg_id, epoch)
  SELECT up.id, o.value ->> 'subject', o.value -> 'payload', o.value ->> 'msg_id', up.epoch
  FROM jsonb_array_elements(${param()}::jsonb) WITH ORDINALITY AS o(value, ord) JOIN up ON up.id = (o.value ->> 'sid')::uuid
  -- Row ids follow the effects' order, so the relay (which publishes by id) sends a step's messages in that order.
  ORDER BY o.ord
  ON CONFLICT (msg_id) DO NOTHING
)`
      : ''
  }${
    shape.messages
      ? `,
messages AS (
  -- No conflict clause: a message id taken twice (which the runtime checks in the step's own turn) fails the whole save.
  INSERT INTO supervisor_messages (supervisor_id, direction, peer_id, message_id, body, sent_at, received_at)
  SELECT up.id, m.direction, m."peerId", m."messageId", m.body, m."sentAt", m."receivedAt"
  FROM jsonb_to_recordset(${param()}::jsonb)
    AS m(sid uuid, direction text, "peerId" uuid, "messageId" text, body text, "sentAt" timestamptz, "receivedAt" timestamptz)
    JOIN up ON up.id = m.sid
)`
      : ''
  }${
    shape.fork
      ? `,
fork_input AS MATERIALIZED (
  SELECT f.sid, f.source_id, f.source_seq, f.conversation_length, f.tasks
  FROM jsonb_to_recordset(${param()}::jsonb) AS f(sid uuid, source_id uuid, source_seq bigint, conversation_length integer, tasks jsonb) JOIN up ON up.id = f.sid
),
fork AS (
  INSERT INTO supervisor_forks (supervisor_id, source_id, source_seq, tasks)
  SELECT sid, source_id, source_seq, tasks FROM fork_input
  ON CONFLICT (supervisor_id) DO NOTHING
),
fork_conversation AS (
  -- The source's history up to the checkpoint, copied inside the database (it may be long; it never travels).
  INSERT INTO supervisor_conversation (supervisor_id, seq, role, content, created_at)
  SELECT f.sid, c.seq, c.role, c.content, c.created_at
  FROM fork_input f JOIN supervisor_conversation c ON c.supervisor_id = f.source_id AND c.seq < f.conversation_length
  ON CONFLICT (supervisor_id, seq) DO NOTHING
)`
      : ''
  }
SELECT supervisor_id AS id, seq FROM checkpoint`;
  // Placeholders appear once each, in order, so the text splits into the fragments of a tagged template: Kysely then
  // compiles the same text every time (and plugins still see the statement).
  const fragments = text.split(/\$\d+/);
  const template = Object.assign([...fragments], { raw: [...fragments] }) as unknown as TemplateStringsArray;
  statements.set(key, template);
  return template;
}

/**
 * The row's pending questions are the snapshot's own (the runtime's save plan hands over that very array): sent
 * once, inside the snapshot, and copied from it by the statement. A caller whose row list differs sends it.
 */
function pendingQuestionsOfRow(input: FullSaveInput): unknown {
  const { snapshot } = input;
  if (typeof snapshot !== 'object' || snapshot === null || !('context' in snapshot)) return input.pendingQuestions;
  const { context } = snapshot;
  const inSnapshot = typeof context === 'object' && context !== null && 'pendingQuestions' in context ? context.pendingQuestions : undefined;
  return inSnapshot === input.pendingQuestions ? null : input.pendingQuestions;
}

function rowOf(input: FullSaveInput): Record<string, unknown> {
  return {
    id: input.supervisorId,
    name: input.name,
    state: input.state,
    phase: input.phase,
    current_activity: input.currentActivity,
    progress: input.progress,
    error_message: input.errorMessage,
    spawned_task_ids: input.spawnedTaskIds,
    pending_questions: pendingQuestionsOfRow(input),
    restoration_count: input.restorationCount,
    last_restored_at: input.lastRestoredAt,
    restoration_source: input.restorationSource,
    last_heartbeat: input.lastHeartbeat,
    conversation_length: input.conversationLength,
    snapshot: input.snapshot,
    machine_version: input.machineVersion,
    step: input.step,
    owner: input.owner ?? null,
    epoch: input.owner ? (input.epoch ?? 0) : (input.epoch ?? null),
    driver: input.driver ?? null,
    reason: input.reason,
  };
}

/** One supervisor's row as the single form's parameters, in SINGLE_COLUMNS order (rowOf's values; JSON as text). */
function singleRowParameters(input: FullSaveInput): unknown[] {
  const row = rowOf(input);
  return SINGLE_COLUMNS.map((column) => {
    const value = row[column];
    return column === 'snapshot' || (column === 'pending_questions' && value !== null) ? JSON.stringify(value) : value;
  });
}

/** One statement for a group of inputs with distinct supervisors; resolves with the checkpoint seq of each written one. */
async function executeGroup(db: Executor, inputs: readonly FullSaveInput[]): Promise<Map<string, number>> {
  const conversation = inputs.flatMap((input) => (input.conversation ?? []).map((entry) => ({ sid: input.supervisorId, ...entry })));
  const questions = inputs.flatMap((input) => (input.questions ?? []).map((question) => ({ sid: input.supervisorId, ...question })));
  const tasks = inputs.flatMap((input) => (input.tasks ?? []).map((task) => ({ sid: input.supervisorId, ...task })));
  const outbox = inputs.flatMap((input) => (input.outbox ?? []).map((message) => ({ sid: input.supervisorId, subject: message.subject, payload: message.payload, msg_id: message.msgId })));
  const [only] = inputs;
  const single = inputs.length === 1 && only !== undefined;
  const parameters: unknown[] = single ? singleRowParameters(only) : [JSON.stringify(inputs.map(rowOf))];
  const forks = inputs.flatMap((input) =>
    input.forkedFrom ? [{ sid: input.supervisorId, source_id: input.forkedFrom.supervisorId, source_seq: input.forkedFrom.checkpointSeq, conversation_length: input.forkedFrom.conversationLength, tasks: input.forkedFrom.tasks }] : [],
  );
  const messages = inputs.flatMap((input) => (input.messages ?? []).map((message) => ({ sid: input.supervisorId, ...message })));
  for (const rows of [conversation, questions, tasks, outbox, messages, forks]) if (rows.length > 0) parameters.push(JSON.stringify(rows));
  const statement = fullSaveStatement({
    single,
    conversation: conversation.length > 0,
    questions: questions.length > 0,
    tasks: tasks.length > 0,
    outbox: outbox.length > 0,
    fork: forks.length > 0,
    messages: messages.length > 0,
  });
  const result = await sql<{ id: string; seq: string | number }>(statement, ...parameters).execute(db);
  // Postgres answers with the uuid in its lowercase form; an input may have named it in capitals.
  return new Map(result.rows.map((row) => [row.id.toLowerCase(), Number(row.seq)]));
}

/** Why a fenced-out input wrote nothing (the rare path, so a second round trip): another owner, or a newer step. */
async function refusals(db: Executor, refused: readonly FullSaveInput[]): Promise<Map<string, Error>> {
  const errors = new Map<string, Error>();
  // Every input is fenced: without owner and epoch, as an edit of an unowned row at epoch 0 (see the statement).
  const byId = await currentFences(db, refused.map((input) => input.supervisorId));
  for (const input of refused) {
    const row = byId.get(input.supervisorId.toLowerCase());
    const owner = input.owner ?? null;
    if (row && (row.owner !== owner || row.epoch !== (input.epoch ?? 0))) {
      errors.set(input.supervisorId, new OwnershipLostError(input.supervisorId, { owner: owner ?? 'nobody (an edit outside a daemon)', epoch: input.epoch ?? 0 }, row));
    } else {
      errors.set(input.supervisorId, new StaleWriteError(input.supervisorId, input.step));
    }
  }
  return errors;
}

/** What one input of a group save came to: its checkpoint, or the error that concerns it alone. */
export type FullSaveOutcome = { ok: true; result: FullSaveResult } | { ok: false; error: Error };

/**
 * Group commit: the save points of many supervisors in ONE statement (one round trip, one transaction), each
 * outcome reported separately. An input the fences refuse gets StaleWriteError or OwnershipLostError and writes
 * nothing; the others commit. When the statement itself fails over one input's data, every input is saved again on
 * its own, so one bad input never takes the others' save points with it. A lost database fails them all with
 * DatabaseUnavailableError (nothing was acknowledged). Inputs must name distinct supervisors.
 */
export async function saveSupervisorStatesFull(db: Executor, inputs: readonly FullSaveInput[]): Promise<FullSaveOutcome[]> {
  const outcomes: Array<FullSaveOutcome | undefined> = inputs.map(() => undefined);
  const valid: Array<{ index: number; input: FullSaveInput }> = [];
  const seen = new Set<string>();
  inputs.forEach((input, index) => {
    try {
      assertFullSave(input);
      if (seen.has(input.supervisorId)) throw new Error(`saveSupervisorStatesFull: supervisor ${input.supervisorId} appears twice in one group; save its steps one after the other`);
      seen.add(input.supervisorId);
      valid.push({ index, input });
    } catch (error) {
      outcomes[index] = { ok: false, error: error as Error };
    }
  });
  if (valid.length > 0) {
    let written: Map<string, number> | null = null;
    try {
      written = await executeGroup(db, valid.map((entry) => entry.input));
    } catch (caught) {
      const error = classifyDatabaseError(caught, 'saveSupervisorStateFull', valid.length === 1 ? valid[0]?.input.supervisorId : undefined);
      if (error instanceof DatabaseUnavailableError || valid.length === 1) {
        for (const { index } of valid) outcomes[index] = { ok: false, error };
      } else {
        const alone = await Promise.all(valid.map(({ input }) => saveSupervisorStatesFull(db, [input])));
        valid.forEach(({ index }, position) => (outcomes[index] = alone[position]?.[0]));
      }
    }
    if (written) {
      const seqOf = (input: FullSaveInput) => written.get(input.supervisorId.toLowerCase());
      const refused = valid.filter(({ input }) => seqOf(input) === undefined);
      let errors = new Map<string, Error>();
      if (refused.length > 0) {
        try {
          errors = await refusals(db, refused.map((entry) => entry.input));
        } catch (caught) {
          // The others committed and are acknowledged; the refused ones wrote nothing, and why could not be read.
          const error = classifyDatabaseError(caught, 'saveSupervisorStateFull', refused.length === 1 ? refused[0]?.input.supervisorId : undefined);
          for (const { input } of refused) errors.set(input.supervisorId, error);
        }
      }
      for (const { index, input } of valid) {
        const seq = seqOf(input);
        outcomes[index] = seq !== undefined ? { ok: true, result: { checkpointSeq: seq } } : { ok: false, error: errors.get(input.supervisorId) ?? new StaleWriteError(input.supervisorId, input.step) };
      }
    }
  }
  return outcomes.map((outcome) => outcome ?? { ok: false, error: new Error('saveSupervisorStatesFull: an input was left without an outcome') });
}

/**
 * The full save point of one supervisor: UPSERT the row and append a checkpoint holding the snapshot, plus the
 * conversation entries, question, task and outbox rows of the same transition, in ONE statement. The row is only
 * updated when it holds an earlier step and, when `owner` is given, names that owner at `epoch`; otherwise nothing at
 * all is written and StaleWriteError (a newer step is stored) or OwnershipLostError (another daemon owns it) is thrown.
 */
export async function saveSupervisorStateFull(db: Executor, input: FullSaveInput): Promise<FullSaveResult> {
  const [outcome] = await saveSupervisorStatesFull(db, [input]);
  if (!outcome) throw new Error('saveSupervisorStateFull: no outcome');
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}
