-- A finished task's row says whether its supervisor has taken its outcome in: applied_step is the step of the save
-- point that applied the completion or failure (the same statement that wrote the conversation entry and the counters),
-- NULL while none has (the task runs, or its worker recorded the outcome directly and the supervisor has not seen it).
-- A restore that falls back to a checkpoint from before that save point still lists the task as running: the marker
-- tells "finished while nobody ran the supervisor" (apply it now) from "applied after this checkpoint" (apply it
-- silently: its conversation entry is stored and the driver was told).
ALTER TABLE supervisor_tasks ADD COLUMN applied_step bigint;

-- Outcomes applied before this migration: a finished task leaves its supervisor's snapshot (and the row's
-- spawned_task_ids) in the save point that applies it, so a finished task the row no longer lists was applied, at the
-- row's step or earlier. Finished supervisors are not restored; their tasks are left as they are.
UPDATE supervisor_tasks t SET applied_step = s.step
FROM supervisor_states s
WHERE t.supervisor_id = s.id AND t.status IN ('completed', 'failed') AND s.state NOT IN ('completed', 'failed')
  AND NOT (t.id = ANY (s.spawned_task_ids));
