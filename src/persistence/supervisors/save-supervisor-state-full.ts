// The full save point: one statement that writes the state row, its checkpoint and the conversation, task and outbox rows of one transition.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { assertFullSave } from './assertions.js';
import { OwnershipLostError } from '../ownership/errors.js';
import { StaleWriteError, type Executor, type FullSaveInput, type FullSaveResult } from './records.js';

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
  let next = 22;
  const conversationParam = withConversation ? `$${next++}` : '';
  const tasksParam = withTasks ? `$${next++}` : '';
  const outboxParam = withOutbox ? `$${next++}` : '';
  const text = `/* sr:save_full_${key} */
WITH up AS (
  INSERT INTO supervisor_states AS s (
    id, name, state, phase, current_activity, progress, error_message, spawned_task_ids, pending_questions,
    restoration_count, last_restored_at, restoration_source, last_heartbeat, conversation_length,
    snapshot, machine_version, step, checkpoint_seq, owner, epoch, driver, updated_at
  ) VALUES (
    $1::uuid, $2::text, $3::supervisor_state, $4::text, $5::text, $6::integer, $7::text, $8::text[], $9::jsonb,
    $10::integer, $11::timestamptz, $12::text, $13::timestamptz, $14::integer, $15::jsonb, $16::integer, $17::bigint, 1,
    $18::text, coalesce($19::bigint, 0), $20::text, now()
  )
  ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, state = EXCLUDED.state, phase = EXCLUDED.phase, current_activity = EXCLUDED.current_activity,
    progress = EXCLUDED.progress, error_message = EXCLUDED.error_message, spawned_task_ids = EXCLUDED.spawned_task_ids,
    pending_questions = EXCLUDED.pending_questions, restoration_count = EXCLUDED.restoration_count,
    last_restored_at = EXCLUDED.last_restored_at, restoration_source = EXCLUDED.restoration_source,
    last_heartbeat = COALESCE(EXCLUDED.last_heartbeat, s.last_heartbeat), conversation_length = EXCLUDED.conversation_length,
    snapshot = EXCLUDED.snapshot, machine_version = EXCLUDED.machine_version, step = EXCLUDED.step,
    checkpoint_seq = s.checkpoint_seq + 1, driver = COALESCE(EXCLUDED.driver, s.driver),
    updated_at = now()
  -- The step fence (no older state over a newer one) and the ownership fence (only the owner at its epoch writes).
  WHERE s.step < EXCLUDED.step AND (EXCLUDED.owner IS NULL OR (s.owner = EXCLUDED.owner AND s.epoch = EXCLUDED.epoch))
  RETURNING s.id, s.checkpoint_seq, s.step, s.state, s.snapshot, s.machine_version, s.epoch
),
checkpoint AS (
  INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
  SELECT id, checkpoint_seq, step, $21::text, state, snapshot, machine_version FROM up
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
  INSERT INTO supervisor_outbox (supervisor_id, subject, payload, msg_id, epoch)
  SELECT up.id, o.subject, o.payload, o.msg_id, up.epoch
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
 * updated when it holds an earlier step and, when `owner` is given, names that owner at `epoch`; otherwise nothing at
 * all is written and StaleWriteError (a newer step is stored) or OwnershipLostError (another daemon owns it) is thrown.
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
    input.owner ? (input.epoch ?? 0) : null,
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
    if (row) return { checkpointSeq: Number(row.seq) };
    // Refused (the rare path, so a second round trip): tell "another daemon owns it" from "a newer step is stored".
    if (input.owner) {
      const current = await db.selectFrom('supervisor_states').select(['owner', 'epoch']).where('id', '=', input.supervisorId).executeTakeFirst();
      if (current && (current.owner !== input.owner || Number(current.epoch) !== (input.epoch ?? 0))) {
        throw new OwnershipLostError(input.supervisorId, { owner: input.owner, epoch: input.epoch ?? 0 }, { owner: current.owner, epoch: Number(current.epoch) });
      }
    }
    throw new StaleWriteError(input.supervisorId, input.step);
  });
}
