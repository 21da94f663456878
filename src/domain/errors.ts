// Typed errors: each names the supervisor it concerns and says what to do next.

export class SupervisorRuntimeError extends Error {
  override readonly name: string = 'SupervisorRuntimeError';
  constructor(
    message: string,
    readonly supervisorId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class SupervisorNotFoundError extends SupervisorRuntimeError {
  override readonly name = 'SupervisorNotFoundError';
  constructor(supervisorId: string) {
    super(
      `Supervisor ${supervisorId} does not exist. Check the id with \`supervisor-runtime status\` or create it with POST /supervisors.`,
      supervisorId,
    );
  }
}

/** A stored row or snapshot does not have the shape the code expects. */
export class InvalidSnapshotError extends SupervisorRuntimeError {
  override readonly name = 'InvalidSnapshotError';
  constructor(
    supervisorId: string,
    readonly problems: string[],
  ) {
    super(
      `Stored state of supervisor ${supervisorId} is invalid: ${problems.join('; ')}. ` +
        `Restore it from a checkpoint with \`supervisor-runtime resume ${supervisorId}\` (the row is kept untouched for inspection).`,
      supervisorId,
    );
  }
}

/** A value about to be written is out of range or unknown; nothing was written. */
export class InvalidSupervisorDataError extends SupervisorRuntimeError {
  override readonly name: string = 'InvalidSupervisorDataError';
  constructor(
    supervisorId: string,
    readonly field: string,
    readonly detail: string,
    /** A subclass's own sentence, for a refusal the generic one would misdescribe. */
    message = `Refusing to write supervisor ${supervisorId}: ${field} ${detail}. Nothing was written; fix the value and retry.`,
  ) {
    super(message, supervisorId);
  }
}

/**
 * A spawn or fork naming an agent driver this daemon does not have; nothing was written. The message lists the drivers
 * it has and says nothing of the supervisor's id, which the caller usually never chose.
 */
export class UnknownDriverError extends InvalidSupervisorDataError {
  override readonly name = 'UnknownDriverError';
  constructor(
    supervisorId: string,
    readonly driver: string,
    readonly knownDrivers: readonly string[],
    /** How to get this driver, when there is a way (the LLM driver's settings). */
    readonly howToConfigure?: string,
  ) {
    const detail =
      howToConfigure !== undefined
        ? `"${driver}" is not configured in this daemon (drivers here: ${knownDrivers.join(', ')}): ${howToConfigure}`
        : `must be one of ${knownDrivers.join(', ')} (got "${driver}")`;
    super(
      supervisorId,
      'driver',
      detail,
      howToConfigure !== undefined
        ? `Agent driver "${driver}" is not configured in this daemon (drivers here: ${knownDrivers.join(', ')}): ${howToConfigure}. Nothing was written.`
        : `Unknown agent driver "${driver}": this daemon has ${knownDrivers.join(', ')}. Nothing was written; use one of those, or leave the driver out for the default.`,
    );
  }
}

/**
 * The database could not be reached or a statement failed for a reason other than bad data. `outcome` says what is
 * known of a write: `not_written` (it failed before or was rolled back), or `unknown` (the database stopped answering
 * while it ran: it may have committed).
 */
export class DatabaseUnavailableError extends SupervisorRuntimeError {
  override readonly name = 'DatabaseUnavailableError';
  constructor(
    operation: string,
    supervisorId: string | undefined,
    cause: unknown,
    readonly outcome: 'not_written' | 'unknown' = 'not_written',
  ) {
    super(
      `Database unavailable during ${operation}${supervisorId ? ` for supervisor ${supervisorId}` : ''}: ${errorText(cause)}. ` +
        (outcome === 'unknown'
          ? 'If this was a write, its outcome is unknown (it may have been written): retry it with the same ids, which make the retry safe, once the database answers; check that DATABASE_URL points at a running, responsive Postgres.'
          : 'Nothing was written; check that DATABASE_URL points at a running Postgres (or that the data folder is writable) and retry.'),
      supervisorId,
      { cause },
    );
  }
}

/** A second process tried to open the same embedded data folder. */
export class DataFolderLockedError extends SupervisorRuntimeError {
  override readonly name = 'DataFolderLockedError';
  constructor(
    readonly folder: string,
    readonly holderPid: number,
  ) {
    super(
      `The embedded database in ${folder} is in use by process ${holderPid}. Stop that process, ` +
        'or point SUPERVISOR_RUNTIME_DATA at another folder, or set DATABASE_URL to share a real Postgres between processes.',
    );
  }
}

/** A data folder that holds no embedded database yet, opened with `mustExist` (a reader such as check); nothing was created. */
export class NoEmbeddedDatabaseError extends SupervisorRuntimeError {
  override readonly name = 'NoEmbeddedDatabaseError';
  constructor(readonly folder: string) {
    super(
      `There is no embedded database in ${folder} (no PGlite data there yet), and nothing was created. ` +
        'Open the data folder a daemon uses (SUPERVISOR_RUNTIME_DATA), or set DATABASE_URL to its Postgres.',
    );
  }
}

/** An event the machine refuses in its current state; the state is unchanged. */
export class EventRefusedError extends SupervisorRuntimeError {
  override readonly name = 'EventRefusedError';
  constructor(
    supervisorId: string,
    readonly eventType: string,
    readonly reason: string,
    readonly state: string,
  ) {
    super(`Supervisor ${supervisorId} refused ${eventType} in state ${state}: ${reason}`, supervisorId);
  }
}

export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(errorText).join('; ');
  }
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
