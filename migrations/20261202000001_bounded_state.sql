-- Bounded state: the snapshot holds open work only, and each save point writes its snapshot once.
--  * supervisor_questions keeps every question asked, with its answer (a snapshot keeps the pending ones only);
--  * finished tasks leave the snapshot (supervisor_tasks already keeps them), so spawned_task_ids lists the running ones;
--  * the snapshot lives in the checkpoint the row points to (checkpoint_seq), not on the row as well: the row stays
--    narrow, a save writes the big value once, and with free space on each page its updates can be HOT.

CREATE TABLE supervisor_questions (
  supervisor_id uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  id            text NOT NULL CHECK (length(id) > 0),
  question      text NOT NULL,
  choices       jsonb CHECK (choices IS NULL OR jsonb_typeof(choices) = 'array'),
  context       text,
  asked_at      timestamptz NOT NULL,
  answer        text,
  answered_at   timestamptz,
  CHECK ((answer IS NULL) = (answered_at IS NULL)),
  PRIMARY KEY (supervisor_id, id)
);

-- A restoration reads a supervisor's pending questions without touching the answered ones.
CREATE INDEX supervisor_questions_pending_idx ON supervisor_questions (supervisor_id) WHERE answered_at IS NULL;

-- Questions still pending, from the row (the column the full save writes with the snapshot).
INSERT INTO supervisor_questions (supervisor_id, id, question, choices, context, asked_at)
SELECT s.id, q ->> 'id', coalesce(q ->> 'question', ''),
       CASE WHEN jsonb_typeof(q -> 'choices') = 'array' THEN q -> 'choices' END,
       q ->> 'context', coalesce((q ->> 'askedAt')::timestamptz, s.updated_at)
FROM supervisor_states s, jsonb_array_elements(CASE WHEN jsonb_typeof(s.pending_questions) = 'array' THEN s.pending_questions ELSE '[]'::jsonb END) AS q
WHERE jsonb_typeof(q) = 'object' AND coalesce(q ->> 'id', '') <> ''
ON CONFLICT DO NOTHING;

-- Answered questions, from the snapshots of machine version 1 (which kept them in context.answeredQuestions).
INSERT INTO supervisor_questions (supervisor_id, id, question, asked_at, answer, answered_at)
SELECT s.id, a ->> 'id', coalesce(a ->> 'question', ''),
       coalesce((a ->> 'answeredAt')::timestamptz, s.updated_at), coalesce(a ->> 'answer', ''),
       coalesce((a ->> 'answeredAt')::timestamptz, s.updated_at)
FROM supervisor_states s,
     jsonb_array_elements(CASE WHEN jsonb_typeof(s.snapshot #> '{context,answeredQuestions}') = 'array' THEN s.snapshot #> '{context,answeredQuestions}' ELSE '[]'::jsonb END) AS a
WHERE jsonb_typeof(a) = 'object' AND coalesce(a ->> 'id', '') <> ''
ON CONFLICT DO NOTHING;

-- A version-1 snapshot lists finished tasks too; the version-2 row lists the running ones (the snapshot migration
-- drops the finished ones from the snapshot the same way when the supervisor is restored).
UPDATE supervisor_states s
SET spawned_task_ids = ARRAY(
  SELECT t ->> 'id' FROM jsonb_array_elements(s.snapshot #> '{context,tasks}') WITH ORDINALITY AS e(t, ord)
  WHERE t ->> 'status' IS DISTINCT FROM 'completed' AND t ->> 'status' IS DISTINCT FROM 'failed' ORDER BY ord)
WHERE jsonb_typeof(s.snapshot #> '{context,tasks}') = 'array' AND coalesce(s.machine_version, 1) = 1;

-- The snapshot moves to the checkpoint the row points to. A row whose snapshot no checkpoint holds (written without a
-- full save) gets one, so nothing stored is lost.
INSERT INTO supervisor_checkpoints (supervisor_id, seq, step, reason, state, snapshot, machine_version)
SELECT s.id, s.checkpoint_seq + 1, s.step, 'migrated', s.state, s.snapshot, coalesce(s.machine_version, 1)
FROM supervisor_states s
WHERE s.snapshot IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM supervisor_checkpoints c WHERE c.supervisor_id = s.id AND c.seq = s.checkpoint_seq AND c.snapshot = s.snapshot);
UPDATE supervisor_states s SET checkpoint_seq = s.checkpoint_seq + 1
WHERE s.snapshot IS NOT NULL
  AND EXISTS (SELECT 1 FROM supervisor_checkpoints c WHERE c.supervisor_id = s.id AND c.seq = s.checkpoint_seq + 1 AND c.reason = 'migrated');

ALTER TABLE supervisor_states DROP COLUMN snapshot;
-- The partial index on pending questions was keyed by updated_at, which every save changes: no update could be HOT.
-- Keyed by id it changes only when the pending questions do.
DROP INDEX supervisor_states_pending_questions_idx;
CREATE INDEX supervisor_states_pending_questions_idx ON supervisor_states (id) WHERE pending_questions <> '[]'::jsonb;
-- Room on each page for the new version of a row: an update that changes no indexed column stays on the page (HOT).
ALTER TABLE supervisor_states SET (fillfactor = 70);
