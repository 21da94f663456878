-- A pending question can be withdrawn (it no longer needs an answer): it leaves the snapshot like an answered one, and
-- its row says when and why. Pending means neither answered nor withdrawn.
ALTER TABLE supervisor_questions
  ADD COLUMN withdrawn_at timestamptz,
  ADD COLUMN withdrawn_reason text,
  ADD CONSTRAINT supervisor_questions_answered_or_withdrawn CHECK (answered_at IS NULL OR withdrawn_at IS NULL);

DROP INDEX supervisor_questions_pending_idx;
CREATE INDEX supervisor_questions_pending_idx ON supervisor_questions (supervisor_id) WHERE answered_at IS NULL AND withdrawn_at IS NULL;
