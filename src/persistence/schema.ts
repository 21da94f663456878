// Kysely table types: the database as the code sees it (one interface per table in migrations/).

import type { ColumnType, Generated } from 'kysely';
import type { SupervisorState } from '../domain/supervisor-state.js';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb arrives parsed; what it holds is checked by the row parsers, never trusted. */
type Json = ColumnType<unknown, string, string>;
/** bigint columns arrive as strings from pg and as numbers from PGlite; always read them through Number(). */
type BigIntColumn = ColumnType<string | number, number | string | undefined, number | string>;

export interface SupervisorStatesTable {
  id: string;
  name: string;
  phase: ColumnType<string, string | undefined, string>;
  conversation_ref: string | null;
  last_heartbeat: NullableTimestamp;
  owner: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  state: ColumnType<SupervisorState, SupervisorState | undefined, SupervisorState>;
  current_activity: string | null;
  progress: ColumnType<number, number | undefined, number>;
  error_message: string | null;
  spawned_task_ids: ColumnType<string[], string[] | undefined, string[]>;
  pending_questions: ColumnType<unknown, string | undefined, string>;
  restoration_count: ColumnType<number, number | undefined, number>;
  last_restored_at: NullableTimestamp;
  restoration_source: string | null;
  machine_version: number | null;
  step: BigIntColumn;
  checkpoint_seq: BigIntColumn;
  conversation_length: ColumnType<number, number | undefined, number>;
  driver: string | null;
  /** Fencing epoch: bumped by every claim; every write carries the owner's epoch in its WHERE. */
  epoch: BigIntColumn;
}

export interface SupervisorTasksTable {
  id: string;
  supervisor_id: string;
  description: ColumnType<string, string | undefined, string>;
  status: ColumnType<string, string | undefined, string>;
  progress: ColumnType<number, number | undefined, number>;
  result: string | null;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
  /** The step of the save point that applied the outcome to the supervisor; null until one has. */
  applied_step: ColumnType<string | number | null, number | string | null | undefined, number | string | null>;
}

/** Every question a supervisor asked, with its answer once it has one (the snapshot keeps only the pending ones). */
export interface SupervisorQuestionsTable {
  supervisor_id: string;
  id: string;
  question: string;
  choices: ColumnType<unknown, string | null | undefined, string | null>;
  context: string | null;
  asked_at: Timestamp;
  answer: string | null;
  answered_at: NullableTimestamp;
  withdrawn_at: NullableTimestamp;
  withdrawn_reason: string | null;
}

export interface SupervisorCheckpointsTable {
  supervisor_id: string;
  seq: BigIntColumn;
  step: BigIntColumn;
  reason: string;
  state: SupervisorState;
  snapshot: Json;
  machine_version: number;
  created_at: Timestamp;
}

export interface SupervisorConversationTable {
  supervisor_id: string;
  seq: number;
  role: string;
  content: string;
  created_at: Timestamp;
}

export interface SupervisorOutboxTable {
  id: Generated<string | number>;
  supervisor_id: string;
  subject: string;
  payload: Json;
  msg_id: string;
  created_at: Timestamp;
  sent_at: NullableTimestamp;
  epoch: ColumnType<string | number | null, number | string | null | undefined, number | string | null>;
}

export interface SupervisorDaemonsTable {
  id: string;
  incarnation: string;
  url: string | null;
  host: string | null;
  pid: number | null;
  process_token: string | null;
  started_at: Timestamp;
  lease_expires_at: Timestamp;
  stopped_at: NullableTimestamp;
}

export interface SupervisorInboxTable {
  id: Generated<string | number>;
  supervisor_id: string;
  kind: string;
  payload: Json;
  /** `<subject>\n<Nats-Msg-Id>`, or `sha256:<hash of subject and body>` for a message published without an id. */
  msg_id: string;
  epoch: ColumnType<string | number | null, number | string | null | undefined, number | string | null>;
  received_by: string;
  received_at: Timestamp;
  applied_at: NullableTimestamp;
  outcome: string | null;
  detail: string | null;
}

export interface SupervisorDeadLettersTable {
  id: Generated<string | number>;
  subject: string;
  msg_id: string | null;
  payload: string;
  reason: string;
  delivery_count: number;
  received_by: string;
  received_at: Timestamp;
}

export interface SupervisorQuarantineTable {
  id: Generated<string | number>;
  supervisor_id: string;
  row_data: Json;
  reason: string;
  created_at: Timestamp;
}

export interface SupervisorForksTable {
  supervisor_id: string;
  source_id: string;
  source_seq: ColumnType<string | number, number, never>;
  tasks: Json;
  created_at: Timestamp;
}

export interface SupervisorMessagesTable {
  supervisor_id: string;
  direction: 'sent' | 'received';
  peer_id: string;
  message_id: string;
  body: string;
  sent_at: Timestamp;
  received_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface SchemaMigrationsTable {
  name: string;
  applied_at: Timestamp;
}

export interface DatabaseSchema {
  supervisor_states: SupervisorStatesTable;
  supervisor_tasks: SupervisorTasksTable;
  supervisor_checkpoints: SupervisorCheckpointsTable;
  supervisor_questions: SupervisorQuestionsTable;
  supervisor_conversation: SupervisorConversationTable;
  supervisor_outbox: SupervisorOutboxTable;
  supervisor_quarantine: SupervisorQuarantineTable;
  supervisor_daemons: SupervisorDaemonsTable;
  supervisor_inbox: SupervisorInboxTable;
  supervisor_dead_letters: SupervisorDeadLettersTable;
  supervisor_forks: SupervisorForksTable;
  supervisor_messages: SupervisorMessagesTable;
  supervisor_runtime_migrations: SchemaMigrationsTable;
}
