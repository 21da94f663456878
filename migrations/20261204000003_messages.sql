-- Messages between supervisors: each supervisor's sent and received messages, one row per message and side, written
-- by the save point that sends (SEND_MESSAGE) or takes in (RECEIVE_MESSAGE) the message, with its conversation entry.
-- A sender's message id is its idempotency key (one message per id); a receiver takes each sender's id in once.
CREATE TABLE supervisor_messages (
  supervisor_id uuid NOT NULL REFERENCES supervisor_states (id) ON DELETE CASCADE,
  direction text NOT NULL CHECK (direction IN ('sent', 'received')),
  -- The other side: the receiver of a sent message, the sender of a received one.
  peer_id uuid NOT NULL,
  message_id text NOT NULL,
  body text NOT NULL,
  sent_at timestamptz NOT NULL,
  received_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (supervisor_id, direction, peer_id, message_id)
);
-- A sent id is the sender's alone, whoever it went to.
CREATE UNIQUE INDEX supervisor_messages_sent_id_idx ON supervisor_messages (supervisor_id, message_id) WHERE direction = 'sent';
CREATE INDEX supervisor_messages_newest_idx ON supervisor_messages (supervisor_id, created_at DESC);

-- Messages arrive like answers: recorded in the inbox by whichever daemon receives them, applied by the owner.
ALTER TABLE supervisor_inbox DROP CONSTRAINT supervisor_inbox_kind_check;
ALTER TABLE supervisor_inbox ADD CONSTRAINT supervisor_inbox_kind_check CHECK (kind IN ('answer', 'task_event', 'message'));
