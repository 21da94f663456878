// Two daemon processes started at the same moment over 1,000 supervisors that run nowhere: their start-up claims
// never overlap, so every supervisor ends owned by exactly one and running there, none is interrupted, and no question
// is re-delivered more than once.

import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { migrateOrThrow } from '../../src/persistence/migrator.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { createDaemonDatabase, daemonRequest, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { natsUrlForTests } from '../helpers/nats-server.js';
import { deleteStreams, messagingTargets, uniquePrefix } from '../messaging/messaging-harness.js';

const target = (await messagingTargets()).find((candidate) => candidate.transport === 'nats');
const SUPERVISORS = 1_000;

(target ? describe : describe.skip)('two daemons started at the same moment', () => {
  const natsUrl = natsUrlForTests();
  const prefix = uniquePrefix('sim');
  const daemons: DaemonProcess[] = [];
  let database: DaemonDatabase | undefined;
  let db: Database | undefined;

  afterAll(async () => {
    for (const daemon of daemons) await daemon.stop('SIGKILL').catch(() => undefined);
    await db?.close();
    await database?.cleanup();
    await deleteStreams(natsUrl, prefix);
  });

  it('over 1,000 supervisors: each is owned by exactly one and runs there, none ends interrupted, no question is re-delivered more than once', { timeout: 300_000 }, async () => {
    database = await createDaemonDatabase(target!.database, 'sr_sim');
    db = await openDatabase({ databaseUrl: database.env.DATABASE_URL, poolSize: 8 });
    await migrateOrThrow(db);
    // A previous daemon left 1,000 supervisors, each waiting for its human, and shut down (its lease released).
    const previous = createRuntime({ database: db, heartbeatIntervalMs: 0, daemonId: 'previous' });
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < SUPERVISORS) {
          const n = next++;
          const supervisor = await previous.spawn({ name: `waiting ${n}` });
          await previous.askQuestion(supervisor.id, { question: `Question ${n}?` });
        }
      }),
    );
    await previous.shutdown({ closeDatabase: false });

    const env = (daemonId: string) => ({
      ...database!.env,
      NATS_URL: natsUrl,
      SUPERVISOR_RUNTIME_SUBJECT_PREFIX: prefix,
      SUPERVISOR_RUNTIME_DAEMON_ID: daemonId,
      SUPERVISOR_RUNTIME_HEARTBEAT_MS: '3600000',
    });
    // Started together; each answers /healthz only after its start-up restore, and the slow machine gets time to say so.
    const started = await Promise.all(['left', 'right'].map((id) => startDaemonProcess({ env: env(id), readyTimeoutMs: 180_000 })));
    daemons.push(...started);

    const owners = await sql<{ owner: string | null; state: string; n: string }>`SELECT owner, state::text AS state, count(*) AS n FROM supervisor_states GROUP BY 1, 2`.execute(db.db);
    expect(owners.rows.filter((row) => row.owner !== 'left' && row.owner !== 'right')).toEqual([]);
    expect(owners.rows.filter((row) => row.state !== 'waiting_for_user')).toEqual([]);
    const live = await Promise.all(
      started.map(async (daemon) => {
        const list = await daemonRequest<{ supervisors: Array<{ id: string; live: boolean }> }>(daemon, 'GET', '/supervisors');
        return new Set(list.supervisors.filter((view) => view.live).map((view) => view.id));
      }),
    );
    const [left, right] = live as [Set<string>, Set<string>];
    expect([...left].filter((id) => right.has(id))).toEqual([]);
    expect(left.size + right.size).toBe(SUPERVISORS);
    console.info(`[ownership] simultaneous start: left runs ${left.size}, right runs ${right.size}`);

    const questions = await sql<{ deliveries: number; restorations: number; n: string }>`
      SELECT (pending_questions -> 0 ->> 'deliveryCount')::int AS deliveries, restoration_count AS restorations, count(*) AS n
      FROM supervisor_states GROUP BY 1, 2`.execute(db.db);
    // Delivered when asked, and once more by the one restoration: never twice more.
    expect(questions.rows.map((row) => [row.deliveries, row.restorations, Number(row.n)])).toEqual([[2, 1, SUPERVISORS]]);
    const redeliveries = await sql<{ n: string }>`
      SELECT count(*) AS n FROM supervisor_outbox WHERE subject LIKE ${`${prefix}supervisors.%.questions`} AND (payload ->> 'redelivery')::boolean`.execute(db.db);
    expect(Number(redeliveries.rows[0]?.n)).toBe(SUPERVISORS);
  });
});
