// The owner and epoch the given rows hold now: read after a fenced write refused some of them, to tell "another daemon
// owns it" from "no such supervisor" or "a newer step is stored". The rare path, so a second round trip.

import type { Executor } from './records.js';

export async function currentFences(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, { owner: string | null; epoch: number }>> {
  if (supervisorIds.length === 0) return new Map();
  const rows = await db.selectFrom('supervisor_states').select(['id', 'owner', 'epoch']).where('id', 'in', [...supervisorIds]).execute();
  return new Map(rows.map((row) => [row.id, { owner: row.owner, epoch: Number(row.epoch) }]));
}
