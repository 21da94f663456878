// Errors of the ownership model: a write refused because another daemon owns the supervisor now, and a daemon id in use.

import { SupervisorRuntimeError } from '../../domain/errors.js';

/**
 * A write carried an owner and epoch the row no longer has: another daemon claimed the supervisor (its lease had
 * expired). Nothing was written. The writer must stop its copy at once: no reload, no retry.
 */
export class OwnershipLostError extends SupervisorRuntimeError {
  override readonly name = 'OwnershipLostError';
  constructor(
    supervisorId: string,
    readonly writer: { owner: string; epoch: number },
    readonly current: { owner: string | null; epoch: number },
  ) {
    super(
      `Supervisor ${supervisorId} is now owned by ${current.owner ?? 'nobody'} (epoch ${current.epoch}); this daemon ` +
        `(${writer.owner}, epoch ${writer.epoch}) lost it and wrote nothing. Send requests for it to its owner's API.`,
      supervisorId,
    );
  }
}

/** Another live process holds a membership lease under the same daemon id. */
export class DaemonIdInUseError extends SupervisorRuntimeError {
  override readonly name = 'DaemonIdInUseError';
  constructor(
    readonly daemonId: string,
    readonly leaseExpiresAt: string,
  ) {
    super(
      `Daemon id "${daemonId}" is held by a live daemon (its lease runs until ${leaseExpiresAt}). Give every daemon its own ` +
        'SUPERVISOR_RUNTIME_DAEMON_ID (or --daemon-id), or stop the other one first.',
    );
  }
}

/** The supervisor is owned by another live daemon; ask that daemon. */
export class SupervisorOwnedElsewhereError extends SupervisorRuntimeError {
  override readonly name = 'SupervisorOwnedElsewhereError';
  constructor(
    supervisorId: string,
    readonly owner: string,
    readonly ownerUrl: string | null,
  ) {
    super(
      `Supervisor ${supervisorId} runs on daemon ${owner}${ownerUrl ? ` (${ownerUrl})` : ''}, not on this one. ` +
        `Send the request to ${ownerUrl ?? 'that daemon'}; it moves here by itself if that daemon stops.`,
      supervisorId,
    );
  }
}
