-- Durable snapshots: the persisted XState snapshot on the row, an append-only checkpoint history, and the conversation log.

ALTER TABLE supervisor_states
  ADD COLUMN snapshot            jsonb,
  ADD COLUMN machine_version     integer,
  -- Monotonic count of committed transitions: a write carrying an older step is refused, so no earlier state overwrites a later one.
  ADD COLUMN step                bigint NOT NULL DEFAULT 0,
  ADD COLUMN checkpoint_seq      bigint NOT NULL DEFAULT 0,
  ADD COLUMN conversation_length integer NOT NULL DEFAULT 0 CHECK (conversation_length >= 0);

CREATE TABLE supervisor_checkpoints (
  supervisor_id   uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  seq             bigint NOT NULL,
  step            bigint NOT NULL,
  reason          text NOT NULL,
  state           supervisor_state NOT NULL,
  snapshot        jsonb NOT NULL,
  machine_version integer NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (supervisor_id, seq)
);

-- Appended, never rewritten: a save point's cost does not grow with the conversation.
CREATE TABLE supervisor_conversation (
  supervisor_id uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  seq           integer NOT NULL CHECK (seq >= 0),
  role          text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content       text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (supervisor_id, seq)
);
