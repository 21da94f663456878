// A worker task a supervisor spawned, as the supervisor sees it.

export const TASK_STATUSES = ['running', 'completed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface SpawnedTask {
  id: string;
  description: string;
  status: TaskStatus;
  /** 0–100, as last reported by the task. */
  progress: number;
  result: string | null;
  error: string | null;
  spawnedAt: string;
  finishedAt: string | null;
}

export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === 'string' && (TASK_STATUSES as readonly string[]).includes(value);
}
