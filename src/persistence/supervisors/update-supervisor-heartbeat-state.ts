// The lightweight heartbeat save point: last heartbeat, current activity and progress only.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { OwnershipLostError } from '../ownership/errors.js';
import { assertProgress } from './assertions.js';
import type { Executor, HeartbeatUpdate } from './records.js';

/**
 * The lightweight save point: touches only last_heartbeat, current_activity and progress (no checkpoint, no snapshot).
 * With `fence`, only the owner at its epoch writes: OwnershipLostError when the row names another (nothing written).
 * Returns false when the supervisor does not exist.
 */
export async function updateSupervisorHeartbeatState(db: Executor, supervisorId: string, update: HeartbeatUpdate = {}): Promise<boolean> {
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  const fence = update.fence;
  return withDatabaseErrors('updateSupervisorHeartbeatState', supervisorId, async () => {
    let query = db
      .updateTable('supervisor_states')
      .set({
        last_heartbeat: update.at ?? sql<Date>`now()`,
        ...(update.currentActivity !== undefined ? { current_activity: update.currentActivity } : {}),
        ...(update.progress !== undefined ? { progress: update.progress } : {}),
      })
      .where('id', '=', supervisorId);
    if (fence) query = query.where('owner', '=', fence.owner).where('epoch', '=', fence.epoch);
    const result = await query.executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return true;
    if (!fence) return false;
    const current = await db.selectFrom('supervisor_states').select(['owner', 'epoch']).where('id', '=', supervisorId).executeTakeFirst();
    if (!current) return false;
    throw new OwnershipLostError(supervisorId, fence, { owner: current.owner, epoch: Number(current.epoch) });
  });
}
