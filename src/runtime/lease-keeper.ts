// The lease keeper: this daemon's membership (joined once, renewed with one single-row update per round however many
// supervisors it owns, released at shutdown) and the claim rounds that take over supervisors of daemons whose lease
// ended. Claimed supervisors are handed to the restorer; the epochs they carry fence every later write.

import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { errorText } from '../domain/errors.js';
import type { RestorationSource } from '../domain/restoration.js';
import { processAlive } from '../persistence/data-folder-lock.js';
import type { Database } from '../persistence/database.js';
import { claimContradictoryFinished, claimSupervisors, disownPreviousIncarnation, findLostOwnership, listOwnedUnfinished, type ClaimedSupervisor } from '../persistence/ownership/claims.js';
import { DaemonIdInUseError } from '../persistence/ownership/errors.js';
import {
  advertiseMembership,
  expireMemberships,
  joinMembership,
  listLocalMemberships,
  nextPeerExpiryMs,
  pruneMemberships,
  releaseMembership,
  renewMembership,
  type Membership,
  type ProcessIdentity,
} from '../persistence/ownership/memberships.js';
import { crashPoint } from './crash-points.js';
import type { Logger } from './logger.js';

export interface LeaseSettings {
  /** How long a membership lease lasts without renewal (default 10 s): a dead daemon's supervisors move after this. */
  ttlMs: number;
  /** Renewal and claim round interval (default 3 s); must be well below the TTL. */
  renewIntervalMs: number;
  /** Supervisors claimed per statement in a claim round (default 50). */
  claimBatchSize: number;
  /** Supervisors claimed per statement at startup, when the daemon restores all before its API opens (default 250). */
  startupClaimBatchSize: number;
  /** Where this daemon's API answers (stored so other daemons can point requests here). */
  url: string | null;
}

// Batches of 50 in rounds: several live daemons share a dead one's supervisors (and the restoring) instead of the first
// taking all. At startup, 250: each batch is restored before the next is claimed, and a restore-all of 10,000 in batches
// of 50 spent half its time between batches (a claim, the batch's reads, the last save points draining).
export const DEFAULT_LEASE_SETTINGS: Omit<LeaseSettings, 'url'> = { ttlMs: 10_000, renewIntervalMs: 3_000, claimBatchSize: 50, startupClaimBatchSize: 250 };

/** What the keeper needs of the runtime. */
export interface LeaseKeeperHost {
  readonly database: Database;
  readonly logger: Logger;
  readonly daemonId: string;
  /** Supervisors running here, with the epoch each was claimed or created at. */
  held(): Array<{ supervisorId: string; epoch: number }>;
  /** Being created or restored here right now (owned here, not running yet): never taken for abandoned. */
  busy(supervisorId: string): boolean;
  /** Stop the local copies of supervisors another daemon claimed (nothing is written for them). */
  dropLost(supervisorIds: string[]): Promise<void>;
  /** Restore claimed supervisors (bounded parallelism); resolves when every one is running or has failed. */
  restoreClaimed(claims: Array<{ claim: ClaimedSupervisor; source: RestorationSource }>): Promise<void>;
  /** Retry what this daemon owns but could not run because the database was away (each round). */
  retryStranded(): Promise<void>;
}

export interface LeaseStats {
  daemonId: string;
  joined: boolean;
  leaseExpiresAt: string | null;
  renewals: number;
  renewalFailures: number;
  /** Rounds that found the lease had run out before it was renewed (a pause or an outage). */
  lapses: number;
  claimed: number;
  lost: number;
}

export interface LeaseKeeper {
  /** Join as a new incarnation (waits, bounded, while a live process holds the id). Idempotent. */
  join(): Promise<Membership>;
  readonly membership: Membership | null;
  /**
   * At start-up: claim, in batches, every supervisor not running anywhere (this id's previous run's included, and
   * finished ones whose row contradicts itself), handing each batch to `restore` while the next one is claimed.
   * Every claimed batch reaches `restore`; when one fails, the batch claimed meanwhile is restored and nothing more
   * is claimed (the next round takes the rest).
   */
  claimAtStartup(restore: LeaseKeeperHost['restoreClaimed']): Promise<void>;
  /** Renew and claim every interval from now on. */
  startRounds(): void;
  /** Run a claim round soon (another daemon released its leases). */
  wake(): void;
  /** Record where this daemon's API answers, for requests about its supervisors that reach another daemon. */
  advertise(url: string): Promise<void>;
  /** Stop claiming (shutdown begins); the lease is still renewed until release(). */
  stopClaiming(): Promise<void>;
  /** Stop renewing and end the lease at once, so others claim at their next round. */
  release(): Promise<void>;
  stats(): LeaseStats;
}

/** One per process: a predecessor with this process's pid but another token was an earlier process, now gone. */
const PROCESS_TOKEN = randomUUID();

/**
 * The host as far as pids mean anything: the host name plus the pid namespace (containers that share a host name
 * but not a pid namespace must never judge each other's pids).
 */
function hostIdentity(): string {
  try {
    return `${hostname()}#${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return hostname();
  }
}

const HOST_IDENTITY = hostIdentity();

export function processIdentity(): ProcessIdentity {
  return { host: HOST_IDENTITY, pid: process.pid, processToken: PROCESS_TOKEN };
}

/** What a test may put in place of the claim statement (to lose its reply after it committed, say). */
export interface LeaseKeeperInternals {
  claim?: typeof claimSupervisors;
}

export function createLeaseKeeper(host: LeaseKeeperHost, initialSettings: LeaseSettings, internals: LeaseKeeperInternals = {}): LeaseKeeper {
  const claimStatement = internals.claim ?? claimSupervisors;
  const settings = { ...initialSettings };
  const db = host.database.db;
  const logger = host.logger.child({ component: 'leases' });
  const identity = processIdentity();
  let membership: Membership | null = null;
  let joining: Promise<Membership> | null = null;
  let roundsTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let renewing: Promise<void> | null = null;
  let round: Promise<void> | null = null;
  let wakeRequested = false;
  let stopped = false;
  let released = false;
  let failuresInARow = 0;
  /**
   * A claim statement failed: it may have committed all the same (its reply lost), leaving supervisors owned here
   * that no batch reached. The next round looks for them.
   */
  let lookForUnclaimedOwn = false;
  /** Renewals that still look for supervisors claimed away after a lapse. */
  let checksLeft = 0;
  const stats: LeaseStats = { daemonId: host.daemonId, joined: false, leaseExpiresAt: null, renewals: 0, renewalFailures: 0, lapses: 0, claimed: 0, lost: 0 };

  /** The source a claim is restored with: a takeover from a daemon alive while this one ran, or a restart. */
  function sourceFor(claim: ClaimedSupervisor, current: Membership): RestorationSource {
    if (claim.previousOwner === null) return 'daemon_restart';
    if (claim.previousLeaseEndedAt && claim.previousLeaseEndedAt.getTime() > current.startedAt.getTime()) return 'reassignment';
    return 'daemon_restart';
  }

  /** Daemons on this host whose process is gone (kill -9) lose their lease now instead of after the TTL. */
  async function expireDeadPredecessors(): Promise<void> {
    const local = await listLocalMemberships(db, identity.host);
    // This daemon's own id too: after a kill -9, a restart under a fixed SUPERVISOR_RUNTIME_DAEMON_ID need not wait.
    const dead = local.filter((member) => {
      if (member.pid === null) return false;
      if (member.pid === identity.pid) return member.processToken !== identity.processToken;
      return !processAlive(member.pid);
    });
    const expired = await expireMemberships(
      db,
      dead.map((member) => ({ daemonId: member.daemonId, incarnation: member.incarnation })),
    );
    if (expired > 0) logger.info({ daemons: dead.map((member) => member.daemonId) }, 'daemons on this host whose process is gone: their leases end now');
  }

  async function joinOnce(): Promise<Membership> {
    await expireDeadPredecessors();
    const deadline = Date.now() + settings.ttlMs * 2 + settings.renewIntervalMs;
    let warned = false;
    for (;;) {
      const incarnation = randomUUID();
      const result = await joinMembership(db, { daemonId: host.daemonId, incarnation, url: settings.url, ttlMs: settings.ttlMs, process: identity });
      if (result.joined) {
        membership = result.membership;
        stats.joined = true;
        stats.leaseExpiresAt = result.membership.leaseExpiresAt.toISOString();
        logger.info({ daemonId: host.daemonId, ttlMs: settings.ttlMs, renewIntervalMs: settings.renewIntervalMs }, 'joined: this daemon holds a membership lease');
        scheduleRenewal();
        // Once per incarnation, before this one runs anything: what this id owned belongs to its previous run.
        const disowned = await disownPreviousIncarnation(db, host.daemonId);
        if (disowned > 0) logger.info({ supervisors: disowned }, 'supervisors of this daemon id\'s previous run are claimable again');
        return result.membership;
      }
      // A kill -9 leaves a lease that runs out by itself; a second live process with this id never lets go.
      if (Date.now() > deadline) throw new DaemonIdInUseError(host.daemonId, result.heldUntil.toISOString());
      if (!warned) {
        warned = true;
        logger.warn({ daemonId: host.daemonId, heldUntil: result.heldUntil.toISOString() }, 'daemon id is held by another lease; waiting for it to end');
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(settings.renewIntervalMs, 1_000)).unref());
    }
  }

  /**
   * Claim batch after batch with `claim`, handing each to `restore` before the next (a large takeover never holds many
   * claimed-but-not-running supervisors), until a batch comes back short. Claimed rows name this daemon, so no batch
   * can claim them again.
   */
  async function claimAndRestore(
    claim: typeof claimSupervisors,
    restore: LeaseKeeperHost['restoreClaimed'],
    announce: (claims: Array<{ claim: ClaimedSupervisor; source: RestorationSource }>) => void,
    batchSize = settings.claimBatchSize,
  ): Promise<void> {
    const claimNext = async () => {
      const current = membership;
      if (!current || stopped) return null;
      let claimed: ClaimedSupervisor[];
      try {
        claimed = await claim(db, { daemonId: host.daemonId, limit: batchSize });
      } catch (error) {
        lookForUnclaimedOwn = true;
        throw error;
      }
      if (claimed.length > 0) crashPoint('claim.after-commit');
      const claims = claimed.map((entry) => ({ claim: entry, source: sourceFor(entry, current) }));
      stats.claimed += claims.length;
      return claims;
    };
    // Batches overlap: the next one is claimed while this one restores, and it starts restoring before this one has
    // finished (its reads and first restores fill the time this one's last restores wait on their commits); at most
    // two restore at once. Whatever a claim returned is restored, even when claiming stops meanwhile or a restore
    // fails: a claimed supervisor is never left owned here and running nowhere. After a failure nothing more is claimed.
    const started: Array<Promise<void>> = [];
    let failed = false;
    let next = claimNext();
    try {
      for (;;) {
        const claims = await next;
        if (!claims || claims.length === 0) break;
        announce(claims);
        const full = claims.length >= batchSize;
        next = full && !failed ? claimNext() : Promise.resolve(null);
        // Held until awaited; a failed claim or restore must not surface as an unhandled rejection meanwhile.
        next.catch(() => undefined);
        const current = restore(claims);
        current.catch(() => {
          failed = true;
        });
        started.push(current);
        const before = started.at(-2);
        if (before) await before;
        if (!full || failed) break;
      }
      await Promise.all(started);
    } catch (error) {
      await Promise.allSettled(started);
      const claimed = await next.catch(() => null);
      if (claimed && claimed.length > 0) await restore(claimed);
      throw error;
    }
  }

  async function renew(): Promise<void> {
    const current = membership;
    if (!current) return;
    try {
      const result = await renewMembership(db, current, settings.ttlMs);
      if (failuresInARow > 0) logger.info({ failedRenewals: failuresInARow }, 'lease renewed again');
      failuresInARow = 0;
      if (!result.renewed) {
        // Another incarnation took this id (only possible after this one's lease ran out): everything here is stale.
        logger.error({ daemonId: host.daemonId }, 'this daemon lost its membership to another process with the same id; stopping its supervisors');
        stats.lost += host.held().length;
        void host.dropLost(host.held().map((entry) => entry.supervisorId)).catch((error: unknown) => logger.warn({ err: errorText(error) }, 'could not stop every lost supervisor'));
        membership = null;
        stats.joined = false;
        return;
      }
      stats.renewals += 1;
      stats.leaseExpiresAt = result.leaseExpiresAt.toISOString();
      // Paused or cut off past (or close to) the TTL: others may have claimed some supervisors. Look now, and once more
      // at the next renewal, since a claim that read this lease as ended may commit just after this look.
      if (result.lapsed) {
        stats.lapses += 1;
        checksLeft = 2;
      }
      if (checksLeft > 0) {
        checksLeft -= 1;
        const lost = await findLostOwnership(db, host.daemonId, host.held());
        if (lost.length > 0) {
          logger.warn({ lost: lost.length }, 'the lease had run out: supervisors other daemons claimed meanwhile are stopped here');
          stats.lost += lost.length;
          // Not awaited: stopping waits for their queued saves, which must not hold back the next renewal.
          void host.dropLost(lost).catch((error: unknown) => logger.warn({ err: errorText(error) }, 'could not stop every lost supervisor'));
        }
      }
    } catch (error) {
      stats.renewalFailures += 1;
      failuresInARow += 1;
      if (failuresInARow === 1 || failuresInARow % 10 === 0) logger.warn({ err: errorText(error), attempts: failuresInARow }, 'could not renew the lease; retrying next round');
    }
  }

  // Renewal runs on its own timer from the moment of joining, so a long restore or claim round never lets the lease lapse.
  function scheduleRenewal(): void {
    clearTimeout(renewTimer);
    if (released) return;
    renewTimer = setTimeout(() => {
      renewing = renew().finally(() => {
        renewing = null;
        if (membership) scheduleRenewal();
      });
    }, settings.renewIntervalMs);
    renewTimer.unref();
  }

  /** When the next round runs: the usual interval, or sooner when a peer's lease runs out before that. */
  let nextRoundInMs = settings.renewIntervalMs;

  async function runRound(): Promise<void> {
    nextRoundInMs = settings.renewIntervalMs;
    if (!membership || stopped) return;
    try {
      await host.retryStranded();
      if (lookForUnclaimedOwn) await restoreOwnedRunningNowhere();
      await claimAndRestore(claimStatement, host.restoreClaimed, (claims) =>
        logger.info({ claimed: claims.length, from: [...new Set(claims.map((entry) => entry.claim.previousOwner))] }, 'claimed supervisors whose owner lease ended'),
      );
      if (Math.random() < 0.05) await pruneMemberships(db, 3_600_000);
      // A peer that stops renewing is claimed the moment its lease runs out, not up to a round later.
      const expiry = await nextPeerExpiryMs(db, host.daemonId);
      if (expiry !== null && expiry < settings.renewIntervalMs) nextRoundInMs = Math.ceil(expiry) + 20;
    } catch (error) {
      logger.warn({ err: errorText(error) }, 'claim round failed; retrying next round');
    }
  }

  /** After a failed claim: unfinished supervisors this daemon owns and runs nowhere are restored at their epoch. */
  async function restoreOwnedRunningNowhere(): Promise<void> {
    const owned = await listOwnedUnfinished(db, host.daemonId);
    lookForUnclaimedOwn = false;
    const held = new Set(host.held().map((entry) => entry.supervisorId));
    const orphans = owned.filter((entry) => !held.has(entry.supervisorId) && !host.busy(entry.supervisorId));
    if (orphans.length === 0) return;
    logger.warn({ supervisors: orphans.length }, 'a claim failed after it may have committed: restoring the supervisors it left owned here and running nowhere');
    await host.restoreClaimed(orphans.map((entry) => ({ claim: { supervisorId: entry.supervisorId, epoch: entry.epoch, previousOwner: null, previousLeaseEndedAt: null }, source: 'daemon_restart' as const })));
  }

  function schedule(delayMs: number): void {
    clearTimeout(roundsTimer);
    if (stopped) return;
    roundsTimer = setTimeout(() => {
      round = runRound().finally(() => {
        round = null;
        const again = wakeRequested;
        wakeRequested = false;
        schedule(again ? 0 : nextRoundInMs);
      });
    }, delayMs);
    roundsTimer.unref();
  }

  return {
    join() {
      if (membership) return Promise.resolve(membership);
      joining ??= joinOnce().finally(() => {
        joining = null;
      });
      return joining;
    },

    get membership() {
      return membership;
    },

    async claimAtStartup(restore) {
      await claimAndRestore(claimStatement, restore, () => undefined, settings.startupClaimBatchSize);
      // Rows corrupted into a finished state are examined too (once, at start-up: this reads every finished row).
      await claimAndRestore(claimContradictoryFinished, restore, (claims) =>
        logger.warn({ supervisors: claims.length }, 'finished supervisors whose stored row contradicts itself: restoring them through validation'),
        settings.startupClaimBatchSize,
      );
    },

    startRounds() {
      if (stopped || roundsTimer) return;
      schedule(settings.renewIntervalMs);
    },

    wake() {
      if (stopped || !roundsTimer) return;
      if (round) wakeRequested = true;
      else schedule(0);
    },

    async release() {
      stopped = true;
      released = true;
      clearTimeout(roundsTimer);
      clearTimeout(renewTimer);
      await round?.catch(() => undefined);
      await renewing?.catch(() => undefined);
      const current = membership;
      membership = null;
      stats.joined = false;
      if (!current) return;
      try {
        await releaseMembership(db, current);
        logger.info({ daemonId: host.daemonId }, 'released this daemon\'s leases: other daemons take its supervisors at their next round');
      } catch (error) {
        logger.warn({ err: errorText(error) }, 'could not release the lease; other daemons take over when it expires');
      }
    },

    async advertise(url) {
      settings.url = url;
      const current = membership ?? (await this.join());
      await advertiseMembership(db, current, url);
    },

    async stopClaiming() {
      stopped = true;
      clearTimeout(roundsTimer);
      await round?.catch(() => undefined);
    },

    stats: () => ({ ...stats }),
  };
}
