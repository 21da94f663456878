// The lightweight heartbeat save point: last heartbeat, current activity and progress only.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { assertProgress } from './assertions.js';
import type { Executor, HeartbeatUpdate } from './records.js';

/** The lightweight save point: touches only last_heartbeat, current_activity and progress (no checkpoint, no snapshot). */
export async function updateSupervisorHeartbeatState(db: Executor, supervisorId: string, update: HeartbeatUpdate = {}): Promise<boolean> {
  if (update.progress !== undefined) assertProgress(supervisorId, update.progress);
  return withDatabaseErrors('updateSupervisorHeartbeatState', supervisorId, async () => {
    const result = await db
      .updateTable('supervisor_states')
      .set({
        last_heartbeat: update.at ?? sql<Date>`now()`,
        ...(update.currentActivity !== undefined ? { current_activity: update.currentActivity } : {}),
        ...(update.progress !== undefined ? { progress: update.progress } : {}),
      })
      .where('id', '=', supervisorId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  });
}
