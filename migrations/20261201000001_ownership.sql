-- Ownership: one membership row per daemon (its liveness, renewed with one single-row update per round), a fencing
-- epoch per supervisor (bumped by every claim and checked in every write's WHERE), and an inbox that records inbound
-- answers and task events on whichever daemon received them, for the owner to apply.

CREATE TABLE supervisor_daemons (
  id               text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  -- A new process with the same id is a new incarnation: its renewals never extend the old one's lease.
  incarnation      uuid NOT NULL,
  -- Where this daemon's HTTP API answers, for requests about supervisors it owns that reach another daemon.
  url              text,
  -- Where the process runs: a daemon restarted on the same host ends the lease of a predecessor whose process is gone.
  host             text,
  pid              integer,
  -- Random per process: tells a dead predecessor that had this pid from another runtime in this same process.
  process_token    uuid,
  started_at       timestamptz NOT NULL DEFAULT now(),
  -- The lease of every supervisor this daemon owns: once it is in the past, other daemons may claim them.
  lease_expires_at timestamptz NOT NULL,
  -- Set by an orderly shutdown (SIGTERM), which also ends the lease at once.
  stopped_at       timestamptz
);

-- Owners written before leases existed had no liveness: their supervisors belong to nobody until claimed.
UPDATE supervisor_states SET owner = NULL WHERE owner IS NOT NULL;

ALTER TABLE supervisor_states ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0);

UPDATE supervisor_states SET restoration_source = NULL
  WHERE restoration_source IS NOT NULL AND restoration_source NOT IN ('daemon_restart', 'manual', 'reassignment');
ALTER TABLE supervisor_states ADD CONSTRAINT supervisor_states_restoration_source_check
  CHECK (restoration_source IN ('daemon_restart', 'manual', 'reassignment'));

-- Claims look supervisors up by (dead) owner; finished ones are never claimed.
CREATE INDEX supervisor_states_owner_idx ON supervisor_states (owner) WHERE state NOT IN ('completed', 'failed');

-- The owner's epoch when the message was written, sent as a header so a stale owner's late publish can be recognised.
ALTER TABLE supervisor_outbox ADD COLUMN epoch bigint;

CREATE TABLE supervisor_inbox (
  id            bigserial PRIMARY KEY,
  supervisor_id uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  kind          text NOT NULL CHECK (kind IN ('answer', 'task_event')),
  payload       jsonb NOT NULL,
  -- The transport's message id: a redelivered or republished message is recorded once.
  msg_id        text NOT NULL UNIQUE,
  -- The supervisor-epoch header the message carried, if any.
  epoch         bigint,
  received_by   text NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  applied_at    timestamptz,
  -- applied | duplicate | refused | unknown: what the owner did with it.
  outcome       text,
  detail        text
);

CREATE INDEX supervisor_inbox_unapplied_idx ON supervisor_inbox (supervisor_id, id) WHERE applied_at IS NULL;
CREATE INDEX supervisor_inbox_applied_idx ON supervisor_inbox (applied_at) WHERE applied_at IS NOT NULL;
