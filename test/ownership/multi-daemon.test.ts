// Several daemon processes on one Postgres and one NATS: each supervisor runs on exactly one of them, a daemon killed
// with SIGKILL or frozen with SIGSTOP loses its supervisors to the others (source `reassignment`, questions re-delivered
// once, no task spawned twice, nothing acknowledged lost), a frozen one that wakes up writes nothing more, and SIGTERM
// hands over without waiting for a lease to expire. One story over three daemons, so the expensive set-up is shared.

import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { clusterDaemonEnv, createDaemonDatabase, daemonRequest, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { natsUrlForTests } from '../helpers/nats-server.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ANSWERS_DURABLE } from '../../src/runtime/inbound-consumers.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { answersSubject, streamNames } from '../../src/transport/subjects.js';
import { bytes, deleteStreams, eventually, messagingTargets, quietLogger, sleep, uniquePrefix } from '../messaging/messaging-harness.js';

const target = (await messagingTargets()).find((candidate) => candidate.transport === 'nats');

const LEASE_TTL_MS = 5_000;
// Claim rounds every half second: a takeover starts at most that long after the lease ran out.
const RENEW_MS = 500;
const PER_DAEMON = 100;

interface View {
  id: string;
  state: string;
  owner: string | null;
  live: boolean;
  restorationSource: string | null;
  restorationCount: number;
  spawnedTaskIds: string[];
  pendingQuestions: Array<{ id: string; deliveryCount: number }>;
}

interface Planted {
  id: string;
  owner: string;
  answered: string;
  open: string;
  task: string;
}

async function inParallel<T>(items: T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

/** Rows as the database holds them now: owner, epoch, step, checkpoint count and the last heartbeat. */
async function footprint(database: Database) {
  const rows = await sql<{ id: string; owner: string | null; epoch: string; step: string; checkpoint_seq: string; last_heartbeat: Date | null; checkpoints: string }>`
    SELECT s.id, s.owner, s.epoch, s.step, s.checkpoint_seq, s.last_heartbeat,
      (SELECT count(*) FROM supervisor_checkpoints c WHERE c.supervisor_id = s.id) AS checkpoints
    FROM supervisor_states s ORDER BY s.id`.execute(database.db);
  return rows.rows.map((row) => ({ ...row, last_heartbeat: row.last_heartbeat?.toISOString() ?? null }));
}

(target ? describe : describe.skip)('three daemons on one Postgres and one NATS', () => {
  const natsUrl = natsUrlForTests();
  const prefix = uniquePrefix('own');
  const daemons = new Map<string, DaemonProcess>();
  const planted: Planted[] = [];
  let database: DaemonDatabase;
  let db: Database;

  // No daemon writes on its own after its restores, so "nothing written after the takeover" is checkable.
  const env = (daemonId: string, extra: Record<string, string> = {}) => clusterDaemonEnv({ database, natsUrl, prefix, leaseTtlMs: LEASE_TTL_MS, renewMs: RENEW_MS }, daemonId, extra);

  const ownersNow = async () => {
    const rows = await sql<{ id: string; owner: string | null; restoration_source: string | null }>`SELECT id, owner, restoration_source FROM supervisor_states`.execute(db.db);
    return new Map(rows.rows.map((row) => [row.id, row]));
  };

  /** Which supervisors each live daemon runs right now, by its own API. */
  const liveOn = async (names: string[]) => {
    const result = new Map<string, Set<string>>();
    for (const name of names) {
      const list = await daemonRequest<{ supervisors: View[] }>(daemons.get(name)!, 'GET', '/supervisors');
      result.set(name, new Set(list.supervisors.filter((view) => view.live).map((view) => view.id)));
    }
    return result;
  };

  beforeAll(async () => {
    database = await createDaemonDatabase(target!.database, 'sr_own');
    db = await openDatabase({ databaseUrl: database.env.DATABASE_URL, poolSize: 2 });
    // d3 heartbeats: it is the one frozen later, and its overdue heartbeats are the writes it attempts on waking.
    const started = await Promise.all([
      startDaemonProcess({ env: env('d1') }),
      startDaemonProcess({ env: env('d2') }),
      startDaemonProcess({ env: env('d3', { SUPERVISOR_RUNTIME_HEARTBEAT_MS: '1000' }) }),
    ]);
    ['d1', 'd2', 'd3'].forEach((name, index) => daemons.set(name, started[index]!));
    // 100 supervisors on each daemon: one question answered (acknowledged), one open, one running task (no worker runs).
    const work = ['d1', 'd2', 'd3'].flatMap((owner) => Array.from({ length: PER_DAEMON }, (_, n) => ({ owner, n })));
    await inParallel(work, 8, async ({ owner, n }) => {
      const daemon = daemons.get(owner)!;
      const supervisor = await daemonRequest<View>(daemon, 'POST', '/supervisors', { name: `${owner}-${n}` });
      const first = await daemonRequest<{ questionId: string }>(daemon, 'POST', `/supervisors/${supervisor.id}/questions`, { question: 'Deploy?' });
      await daemonRequest(daemon, 'POST', `/supervisors/${supervisor.id}/questions/${first.questionId}/answer`, { answer: 'yes' });
      const task = await daemonRequest<{ taskId: string }>(daemon, 'POST', `/supervisors/${supervisor.id}/tasks`, { description: `build ${n}` });
      const open = await daemonRequest<{ questionId: string }>(daemon, 'POST', `/supervisors/${supervisor.id}/questions`, { question: 'Which region?' });
      planted.push({ id: supervisor.id, owner, answered: first.questionId, open: open.questionId, task: task.taskId });
    });
  }, 240_000);

  afterAll(async () => {
    for (const daemon of daemons.values()) {
      daemon.child.kill('SIGCONT');
      await daemon.stop('SIGKILL').catch(() => undefined);
    }
    await db?.close();
    await database?.cleanup();
    await deleteStreams(natsUrl, prefix);
  });

  it('each supervisor is owned by the daemon that spawned it, and runs there only', async () => {
    const owners = await ownersNow();
    for (const supervisor of planted) expect(owners.get(supervisor.id)?.owner).toBe(supervisor.owner);
    const live = await liveOn(['d1', 'd2', 'd3']);
    for (const [name, ids] of live) expect([...ids].sort()).toEqual(planted.filter((p) => p.owner === name).map((p) => p.id).sort());
  });

  it('kill -9 of d1: every one of its supervisors runs on d2 or d3 within TTL + 2 s, as a reassignment, questions re-delivered once, no task spawned twice, nothing acknowledged lost', { timeout: 60_000 }, async () => {
    const victims = planted.filter((p) => p.owner === 'd1');
    const killedAt = Date.now();
    await daemons.get('d1')!.stop('SIGKILL');
    daemons.delete('d1');
    const movedAfterMs = await eventually(
      'd1\'s supervisors to be reassigned',
      async () => {
        const owners = await ownersNow();
        return victims.every((p) => ['d2', 'd3'].includes(owners.get(p.id)?.owner ?? '') && owners.get(p.id)?.restoration_source === 'reassignment') ? Date.now() - killedAt : undefined;
      },
      LEASE_TTL_MS + 30_000,
      100,
    );
    const live = await liveOn(['d2', 'd3']);
    const running = new Set([...live.get('d2')!, ...live.get('d3')!]);
    const measuredMs = Date.now() - killedAt;
    // Running (not only claimed) on a survivor, never on both.
    for (const victim of victims) expect(running.has(victim.id)).toBe(true);
    expect([...live.get('d2')!].filter((id) => live.get('d3')!.has(id))).toEqual([]);
    console.info(`[ownership] d1's ${victims.length} supervisors claimed after ${movedAfterMs} ms and running elsewhere after ${measuredMs} ms (TTL ${LEASE_TTL_MS} ms)`);
    expect(measuredMs).toBeLessThanOrEqual(LEASE_TTL_MS + 2_000);

    for (const victim of victims) {
      const view = await daemonRequest<View>(daemons.get('d2')!, 'GET', `/supervisors/${victim.id}`);
      expect(view).toMatchObject({ state: 'waiting_for_user', restorationSource: 'reassignment', restorationCount: 1, spawnedTaskIds: [victim.task] });
      // The acknowledged answer stayed answered; the open question went out exactly once more.
      expect(view.pendingQuestions).toEqual([expect.objectContaining({ id: victim.open, deliveryCount: 2 })]);
    }
    // One tasks.spawn message per task, ever (the outbox holds every message the daemons wrote).
    const spawns = await sql<{ msg_id: string; payload: { taskId: string } }>`SELECT msg_id, payload FROM supervisor_outbox WHERE subject = ${`${prefix}tasks.spawn`}`.execute(db.db);
    const perTask = new Map<string, number>();
    for (const row of spawns.rows) perTask.set(row.payload.taskId, (perTask.get(row.payload.taskId) ?? 0) + 1);
    for (const supervisor of planted) expect(perTask.get(supervisor.task)).toBe(1);
    // The other daemons' supervisors were not touched.
    const owners = await ownersNow();
    for (const supervisor of planted.filter((p) => p.owner !== 'd1')) expect(owners.get(supervisor.id)).toMatchObject({ owner: supervisor.owner, restoration_source: null });
  });

  it('answers published on NATS reach each supervisor\'s owner whichever daemon receives them: recorded once, applied by the owner, never bounced', { timeout: 60_000 }, async () => {
    const front = createNatsTransport({ servers: natsUrl, subjectPrefix: prefix, logger: quietLogger });
    await front.start();
    try {
      for (const supervisor of planted) {
        await front.publish(answersSubject(supervisor.id, prefix), bytes({ questionId: supervisor.open, answer: 'eu-west' }), { msgId: `answer:${supervisor.open}` });
      }
      await eventually(
        'every answer to be applied',
        async () => {
          const rows = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_inbox WHERE outcome = 'applied'`.execute(db.db);
          return Number(rows.rows[0]?.n) === planted.length ? true : undefined;
        },
        30_000,
        100,
      );
      const inbox = await sql<{ received_by: string; owner: string; outcome: string; n: string }>`
        SELECT i.received_by, s.owner, i.outcome, count(*) AS n FROM supervisor_inbox i JOIN supervisor_states s ON s.id = i.supervisor_id
        GROUP BY 1, 2, 3`.execute(db.db);
      // Both survivors took messages off the shared consumer, including ones for supervisors the other owns.
      expect(inbox.rows.some((row) => row.received_by !== row.owner)).toBe(true);
      expect(inbox.rows.every((row) => row.outcome === 'applied')).toBe(true);
      const nc = await connect({ servers: natsUrl });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.info(streamNames(prefix).supervisors, ANSWERS_DURABLE);
      // Recorded and acked by whoever got it: no message was nak'd back and forth between daemons.
      expect(info.num_redelivered).toBe(0);
      expect(info.num_ack_pending).toBe(0);
      await nc.close();
      for (const supervisor of planted) {
        const owner = (await ownersNow()).get(supervisor.id)!.owner!;
        const view = await daemonRequest<View & { pendingQuestions: unknown[] }>(daemons.get(owner)!, 'GET', `/supervisors/${supervisor.id}`);
        // Answered; its task still runs, so it waits for that now.
        expect(view).toMatchObject({ state: 'waiting_for_tasks', pendingQuestions: [] });
      }
    } finally {
      await front.close();
    }
  });

  it('d3 frozen past its lease loses everything to d2; woken, every write it attempts is refused by the epoch, it stops its actors, and nothing it held is written again', { timeout: 90_000 }, async () => {
    const d3 = daemons.get('d3')!;
    const heldByD3 = (await liveOn(['d3'])).get('d3')!;
    expect(heldByD3.size).toBeGreaterThanOrEqual(PER_DAEMON);
    d3.child.kill('SIGSTOP');
    await eventually(
      'd2 to own everything',
      async () => {
        const owners = await ownersNow();
        return [...owners.values()].every((row) => row.owner === 'd2') ? true : undefined;
      },
      LEASE_TTL_MS + 60_000,
      200,
    );
    await eventually('d2 to run everything', async () => ((await liveOn(['d2'])).get('d2')!.size === planted.length ? true : undefined), 30_000, 200);
    const afterTakeover = await footprint(db);

    d3.child.kill('SIGCONT');
    // Its overdue heartbeats fire at once; the first renewal finds the lapse. Either way it stops every actor.
    await eventually('d3 to stop running what it lost', async () => ((await liveOn(['d3'])).get('d3')!.size === 0 ? true : undefined), 30_000, 200);
    await sleep(1_500);
    expect(d3.logs()).toMatch(/another daemon owns this supervisor now: stopped it here without writing|supervisors other daemons claimed meanwhile are stopped here/);
    // Not one row, heartbeat or checkpoint changed since d2 took over: no fork in any checkpoint sequence.
    expect(await footprint(db)).toEqual(afterTakeover);
    const forks = await sql<{ n: string }>`
      SELECT count(*) AS n FROM (
        SELECT supervisor_id, step FROM supervisor_checkpoints GROUP BY supervisor_id, step HAVING count(*) > 1
      ) AS duplicated`.execute(db.db);
    expect(Number(forks.rows[0]?.n)).toBe(0);
    // Still a working daemon: it answers, and for a supervisor d2 owns it names d2.
    const response = await fetch(`${d3.url}/supervisors/${planted[0]!.id}/questions/${planted[0]!.open}/answer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ answer: 'eu-west' }),
    });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: 'SupervisorOwnedElsewhereError', owner: 'd2', ownerUrl: daemons.get('d2')!.url });
  });

  it('SIGTERM on d2: it releases its lease after its last save, and all 300 supervisors run on d3 without waiting for the lease to expire', { timeout: 60_000 }, async () => {
    const d2 = daemons.get('d2')!;
    const signalledAt = Date.now();
    const stopped = await d2.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    daemons.delete('d2');
    const membership = await sql<{ stopped_at: Date | null }>`SELECT stopped_at FROM supervisor_daemons WHERE id = 'd2'`.execute(db.db);
    const releasedAt = membership.rows[0]?.stopped_at;
    expect(releasedAt).toBeInstanceOf(Date);
    // Claimed at once (not after the TTL): the release NOTIFY wakes d3, which claims in batches of 50.
    const claimedAt = await eventually(
      'd3 to own everything',
      async () => ([...(await ownersNow()).values()].every((row) => row.owner === 'd3') ? Date.now() : undefined),
      30_000,
      20,
    );
    const runningAt = await eventually(
      'd3 to run everything',
      async () => ((await liveOn(['d3'])).get('d3')!.size === planted.length ? Date.now() : undefined),
      30_000,
      50,
    );
    console.info(
      `[ownership] SIGTERM → all ${planted.length} claimed by d3 ${claimedAt - releasedAt!.getTime()} ms after the release, running after ${runningAt - signalledAt} ms`,
    );
    // The claim is what must not wait for the lease; restoring 300 then takes about a second on an idle 2-core machine
    // (more under load). The 2 s hand-off is pinned down in sigterm-handoff.test.ts.
    expect(claimedAt - releasedAt!.getTime()).toBeLessThan(LEASE_TTL_MS);
    const owners = await ownersNow();
    expect([...owners.values()].every((row) => row.owner === 'd3' && row.restoration_source === 'reassignment')).toBe(true);
  });
});
