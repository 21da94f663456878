-- Enhanced supervisor state: the state enum, detailed activity, pending questions and restoration bookkeeping.

CREATE TYPE supervisor_state AS ENUM (
  'initializing',
  'idle',
  'working',
  'waiting_for_user',
  'waiting_for_tasks',
  'completed',
  'failed',
  'interrupted'
);

ALTER TABLE supervisor_states
  ADD COLUMN state              supervisor_state NOT NULL DEFAULT 'initializing',
  ADD COLUMN current_activity   text,
  ADD COLUMN progress           integer NOT NULL DEFAULT 0
                                CONSTRAINT supervisor_states_progress_range CHECK (progress BETWEEN 0 AND 100),
  ADD COLUMN error_message      text,
  ADD COLUMN spawned_task_ids   text[] NOT NULL DEFAULT '{}',
  ADD COLUMN pending_questions  jsonb NOT NULL DEFAULT '[]'::jsonb
                                CONSTRAINT supervisor_states_pending_questions_array CHECK (jsonb_typeof(pending_questions) = 'array'),
  ADD COLUMN restoration_count  integer NOT NULL DEFAULT 0 CHECK (restoration_count >= 0),
  ADD COLUMN last_restored_at   timestamptz,
  ADD COLUMN restoration_source text;

-- "Supervisors with pending questions" reads only this partial index, however many supervisors are idle.
CREATE INDEX supervisor_states_pending_questions_idx
  ON supervisor_states (updated_at)
  WHERE pending_questions <> '[]'::jsonb;

CREATE INDEX supervisor_states_state_idx ON supervisor_states (state);
