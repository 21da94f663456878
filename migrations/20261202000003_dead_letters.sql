-- Dead letters: inbound messages terminated because no retry could ever apply them (malformed, refused by the
-- database for their content, or naming a supervisor or task that does not exist), kept for a person to inspect.
CREATE TABLE supervisor_dead_letters (
  id             bigserial PRIMARY KEY,
  subject        text NOT NULL,
  msg_id         text,
  -- The message as received, as text: invalid UTF-8 replaced, NUL characters written as \u0000 (text cannot hold NUL).
  payload        text NOT NULL,
  reason         text NOT NULL,
  delivery_count integer NOT NULL,
  received_by    text NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now()
);
-- A message redelivered before its termination took effect is recorded once.
CREATE UNIQUE INDEX supervisor_dead_letters_msg_idx ON supervisor_dead_letters (subject, msg_id) WHERE msg_id IS NOT NULL;
CREATE INDEX supervisor_dead_letters_received_idx ON supervisor_dead_letters (received_at);
