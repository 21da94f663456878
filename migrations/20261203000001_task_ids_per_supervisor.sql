-- A task id is unique across supervisors (the primary key). The save statement upserts a supervisor's own task rows on
-- (id, supervisor_id): a task id another supervisor already has then fails the save with a unique violation on the
-- primary key, instead of being skipped by the upsert while the rest of the save (row, checkpoint, tasks.spawn message)
-- committed and left the supervisor waiting for a task whose outcome goes to the other one.
CREATE UNIQUE INDEX supervisor_tasks_id_supervisor_idx ON supervisor_tasks (id, supervisor_id);
