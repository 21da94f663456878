// Faults of the connection, injected by a test's kysely plugin on the real database: what pg throws when a connection
// drops, and how to recognise the reply whose loss is the interesting case.

import type { QueryResult, UnknownRow } from 'kysely';

/** What pg throws when the connection resets (mid-statement, or between COMMIT and its reply). */
export function connectionReset(): Error {
  return Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
}

/** The reply of one supervisor's full save point: exactly one row, its id and the new checkpoint's seq. */
export function isSingleFullSaveReply(result: QueryResult<UnknownRow>): boolean {
  const [row] = result.rows;
  return result.rows.length === 1 && row !== undefined && Object.keys(row).join(',') === 'id,seq';
}
