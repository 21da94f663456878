// The health check both databases answer GET /healthz with: one SELECT 1 within a deadline.

import { sql, type Kysely } from 'kysely';
import type { DatabaseHealth, DatabaseKind } from './database.js';
import type { DatabaseSchema } from './schema.js';

export async function checkHealth(db: Kysely<DatabaseSchema>, kind: DatabaseKind, timeoutMs = 2_000): Promise<DatabaseHealth> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([sql`SELECT 1`.execute(db), timeout]);
    return { ok: true, kind, detail: 'ok' };
  } catch (error) {
    return { ok: false, kind, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
