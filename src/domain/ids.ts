// The shapes of ids: supervisor ids are UUIDs (Postgres' uuid type, in either case), and the ids a caller chooses for
// tasks and questions go into NATS subjects and URL paths as they are. One rule each, for the API's schemas and the
// runtime alike.

/** A plain UUID (Ajv's format "uuid" also lets "urn:uuid:…" through, which Postgres refuses). */
export const UUID_PATTERN = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$';

/** A task or question id a caller chooses: 1–128 letters, digits, `_` or `-`. */
export const CALLER_ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$';

const UUID = new RegExp(UUID_PATTERN);
const CALLER_ID = new RegExp(CALLER_ID_PATTERN);

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function isCallerId(value: string): boolean {
  return CALLER_ID.test(value);
}
