-- A fork is a new supervisor made from a checkpoint of another: its row records where it came from. Written by the
-- fork's first save point (the same statement that creates its row and copies the source's conversation up to that
-- checkpoint), never updated. The source is not a foreign key: a fork outlives whatever happens to its source.
CREATE TABLE supervisor_forks (
  supervisor_id uuid PRIMARY KEY REFERENCES supervisor_states (id) ON DELETE CASCADE,
  source_id uuid NOT NULL,
  source_seq bigint NOT NULL,
  -- The checkpoint's running tasks and the tasks spawned for the fork in their place: [{ "from", "to", "description" }].
  tasks jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now()
);
-- The forks of a supervisor, newest first.
CREATE INDEX supervisor_forks_source_idx ON supervisor_forks (source_id, created_at DESC);
