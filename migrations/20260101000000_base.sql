-- Base schema: one row per supervisor, and the tasks it spawned (so spawned task ids can be validated).

CREATE TABLE supervisor_states (
  id               uuid PRIMARY KEY,
  name             text NOT NULL CHECK (length(name) > 0),
  phase            text NOT NULL DEFAULT 'planning',
  -- Reference to the conversation this supervisor drives (its history is in supervisor_conversation).
  conversation_ref text,
  last_heartbeat   timestamptz,
  -- The daemon that runs this supervisor now (leases with fencing tokens build on it).
  owner            text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE supervisor_tasks (
  id            text PRIMARY KEY,
  supervisor_id uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  description   text NOT NULL DEFAULT '',
  status        text NOT NULL DEFAULT 'running'
                CHECK (status IN ('pending', 'running', 'completed', 'failed')),
  progress      integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  result        text,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);

CREATE INDEX supervisor_tasks_supervisor_idx ON supervisor_tasks (supervisor_id);
