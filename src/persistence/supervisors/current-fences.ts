// The owner and epoch the given rows hold now: read after a fenced write refused some of them, to tell "another daemon
// owns it" from "no such supervisor" or "a newer step is stored". The rare path, so a second round trip.

import type { Executor } from './records.js';
import { wantedIds } from './wanted-ids.js';

export async function currentFences(db: Executor, supervisorIds: readonly string[]): Promise<Map<string, { owner: string | null; epoch: number }>> {
  if (supervisorIds.length === 0) return new Map();
  const rows = await db
    .selectFrom(wantedIds(supervisorIds))
    .innerJoinLateral((eb) => eb.selectFrom('supervisor_states as s').select(['s.id', 's.owner', 's.epoch']).whereRef('s.id', '=', 'wanted.id').offset(0).as('s'), (join) => join.onTrue())
    .selectAll('s')
    .execute();
  return new Map(rows.map((row) => [row.id, { owner: row.owner, epoch: Number(row.epoch) }]));
}
