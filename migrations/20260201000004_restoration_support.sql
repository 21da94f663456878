-- Restoration support: the agent driver a supervisor runs with (so a restored one gets it back), and a quarantine
-- that keeps a copy of a row no restore could use, verbatim, for inspection.

ALTER TABLE supervisor_states ADD COLUMN driver text;

CREATE TABLE supervisor_quarantine (
  id            bigserial PRIMARY KEY,
  supervisor_id uuid NOT NULL,
  row_data      jsonb NOT NULL,
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX supervisor_quarantine_supervisor_idx ON supervisor_quarantine (supervisor_id);
