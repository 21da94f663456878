// The supervisor state enum: the one list that the machine's top-level states and the SQL enum are checked against.

export const SUPERVISOR_STATES = [
  'initializing',
  'idle',
  'working',
  'waiting_for_user',
  'waiting_for_tasks',
  'completed',
  'failed',
  'interrupted',
] as const;

export type SupervisorState = (typeof SUPERVISOR_STATES)[number];

/** States a supervisor never leaves; restore-all skips them. */
export const TERMINAL_STATES: readonly SupervisorState[] = ['completed', 'failed'];

export function isSupervisorState(value: unknown): value is SupervisorState {
  return typeof value === 'string' && (SUPERVISOR_STATES as readonly string[]).includes(value);
}

export function isTerminalState(state: SupervisorState): boolean {
  return TERMINAL_STATES.includes(state);
}
