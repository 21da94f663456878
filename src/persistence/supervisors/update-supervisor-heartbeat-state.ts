// The lightweight heartbeat save point: last heartbeat, current activity and progress only.

import { sql } from 'kysely';
import { withDatabaseErrors } from '../database-errors.js';
import { OwnershipLostError } from '../ownership/errors.js';
import { assertProgress } from './assertions.js';
import { currentFences } from './current-fences.js';
import type { Executor, HeartbeatUpdate } from './records.js';

/**
 * The lightweight save point: touches only last_heartbeat, current_activity and progress (no checkpoint, no snapshot).
 * With `fence`, only the owner at its epoch writes: OwnershipLostError when the row names another (nothing written).
 * Without one it is a raw column write, which only lands on a row no daemon owns: a row a daemon owns refuses it with
 * OwnershipLostError naming that daemon (its running copy would never hear of the write). Returns false when the
 * supervisor does not exist.
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
    query = fence ? query.where('owner', '=', fence.owner).where('epoch', '=', fence.epoch) : query.where('owner', 'is', null);
    const result = await query.executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return true;
    const current = (await currentFences(db, [supervisorId])).get(supervisorId.toLowerCase());
    if (!current) return false;
    throw new OwnershipLostError(supervisorId, fence ?? { owner: 'nobody (an edit outside a daemon)', epoch: current.epoch }, current);
  });
}

/** One supervisor's heartbeat in a batch: always fenced (only the owner at its epoch writes). */
export interface HeartbeatWrite {
  supervisorId: string;
  fence: { owner: string; epoch: number };
  at: string;
  currentActivity: string | null;
  progress: number;
}

/** What one heartbeat of a batch came to: written, no such supervisor, or another daemon owns it now. */
export type HeartbeatOutcome = { ok: true; written: boolean } | { ok: false; error: Error };

/**
 * The heartbeats of many supervisors in ONE statement (a heartbeat round costs one round trip, whatever the number of
 * supervisors). Each outcome is reported separately; a fenced-out one gets OwnershipLostError and writes nothing.
 */
export async function updateSupervisorHeartbeats(db: Executor, writes: readonly HeartbeatWrite[]): Promise<HeartbeatOutcome[]> {
  if (writes.length === 0) return [];
  for (const write of writes) assertProgress(write.supervisorId, write.progress);
  return withDatabaseErrors('updateSupervisorHeartbeats', writes.length === 1 ? writes[0]?.supervisorId : undefined, async () => {
    const rows = JSON.stringify(
      [...writes]
        .sort((a, b) => a.supervisorId.localeCompare(b.supervisorId))
        .map((write) => ({ id: write.supervisorId, at: write.at, activity: write.currentActivity, progress: write.progress, owner: write.fence.owner, epoch: write.fence.epoch })),
    );
    const result = await sql<{ id: string }>`/* sr:heartbeats */
      UPDATE supervisor_states AS s SET last_heartbeat = h.at, current_activity = h.activity, progress = h.progress
      FROM jsonb_to_recordset(${rows}::jsonb) AS h(id uuid, at timestamptz, activity text, progress integer, owner text, epoch bigint)
      WHERE s.id = h.id AND s.owner = h.owner AND s.epoch = h.epoch
      RETURNING s.id`.execute(db);
    const written = new Set(result.rows.map((row) => row.id));
    const byId = await currentFences(db, writes.filter((write) => !written.has(write.supervisorId.toLowerCase())).map((write) => write.supervisorId));
    return writes.map((write): HeartbeatOutcome => {
      if (written.has(write.supervisorId.toLowerCase())) return { ok: true, written: true };
      const row = byId.get(write.supervisorId.toLowerCase());
      if (!row) return { ok: true, written: false };
      return { ok: false, error: new OwnershipLostError(write.supervisorId, write.fence, row) };
    });
  });
}
