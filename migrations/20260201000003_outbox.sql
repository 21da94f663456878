-- Transactional outbox: messages are inserted in the same statement as the save point that caused them, and relayed to the transport.

CREATE TABLE supervisor_outbox (
  id            bigserial PRIMARY KEY,
  supervisor_id uuid NOT NULL,
  subject       text NOT NULL,
  payload       jsonb NOT NULL,
  -- Stable effect id (<supervisor>:<step>:<effect index>), sent as Nats-Msg-Id so the server drops duplicates.
  msg_id        text NOT NULL UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz
);

CREATE INDEX supervisor_outbox_unsent_idx ON supervisor_outbox (id) WHERE sent_at IS NULL;
CREATE INDEX supervisor_outbox_sent_idx ON supervisor_outbox (sent_at) WHERE sent_at IS NOT NULL;
