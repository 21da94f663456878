// The crash-point sweep: three daemon processes on one Postgres and one NATS, and for each named crash point
// (src/runtime/crash-points.ts) one of them, the victim, started with SUPERVISOR_RUNTIME_CRASH_POINT=<point> and driven
// until it kills itself there. After each crash: every unfinished supervisor runs on exactly one live daemon within the
// lease TTL + slack; every acknowledged write is there; the supervisor the victim was working on is finished through the
// survivors with the same ids (retries are applied once); no question is answered twice or lost, no task spawned twice,
// each answer and task outcome applied once (conversation entries counted), and the outbox drains. Then the victim is
// started again with the next point. The servers, the database and the two survivors are shared by every point.

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/persistence/database.js';
import { CRASH_POINT_NAMES } from '../../src/runtime/crash-points.js';
import { createNatsTransport } from '../../src/transport/nats-transport.js';
import { answersSubject, streamNames, taskEventsSubject } from '../../src/transport/subjects.js';
import type { Transport } from '../../src/transport/transport.js';
import { clusterDaemonEnv, createDaemonDatabase, startDaemonProcess, type DaemonDatabase, type DaemonProcess } from '../helpers/daemon.js';
import { natsUrlForTests } from '../helpers/nats-server.js';
import { runBin } from '../helpers/processes.js';
import { bytes, deleteStreams, eventually, messagingTargets, quietLogger, sleep, uniquePrefix } from '../messaging/messaging-harness.js';

const target = (await messagingTargets()).find((candidate) => candidate.transport === 'nats');

const LEASE_TTL_MS = 2_000;
const RENEW_MS = 500;
/** A takeover: the lease runs out (TTL after the last renewal), the next claim round, the restores. */
const TAKEOVER_SLACK_MS = 3_000;
const VICTIM = 'cp-victim';
const PEERS = ['cp-peer-a', 'cp-peer-b'];

/** The sweep, in order. `<name>:<n>`: the n-th pass; the script below says which operation gets there. */
const SWEEP = [
  // Save points of the victim's supervisor: create (1), START (2), its message to a peer's supervisor (3), ASK q1 (4).
  'save.before-statement:4',
  'save.after-commit:3',
  'save.after-commit:4',
  // Outbox publishes: the creation's state change (1), START's (2), the message (3), the ASK's question and state change (4).
  'outbox.after-publish:3',
  'outbox.after-publish:4',
  // The first inbound message the victim records (copies of q1's answer, published until it takes one).
  'inbox.after-record',
  // The first inbox row the victim applies: q1's answer, published over NATS.
  'inbox.after-apply',
  // The victim's resume of its own supervisor: the claim, then the RESTORED save point (q2 pending, re-delivered).
  'claim.after-commit',
  'restore.after-restored',
] as const;

interface Tracked {
  id: string;
  name: string;
  /** What each request got: `ask q1 lost`, `ask q1 201`, `ask q1 200 replay`… (the evidence of each window). */
  replies: string[];
  /** Acknowledged writes only: what the invariants require to be stored. */
  acked: {
    spawned: boolean;
    completed: boolean;
    questions: Map<string, { question: string; answer: string | null }>;
    tasks: Map<string, { description: string; completed: boolean }>;
    /** Messages it sent, by id: to whom, and the text. */
    sent: Map<string, { to: string; body: string }>;
  };
}

interface ListView {
  id: string;
  live: boolean;
}

type Reply = { status: number; body: Record<string, unknown> };

async function http(daemon: DaemonProcess, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Reply | 'lost'> {
  try {
    const response = await fetch(`${daemon.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  } catch {
    // Connection refused or reset: the daemon died (or was never there).
    return 'lost';
  }
}

const exited = (daemon: DaemonProcess) => daemon.child.exitCode !== null || daemon.child.signalCode !== null;

(target ? describe : describe.skip)('crash-point sweep: three daemons on one Postgres and one NATS', () => {
  const natsUrl = natsUrlForTests();
  const prefix = uniquePrefix('crash');
  const peers = new Map<string, DaemonProcess>();
  const tracked = new Map<string, Tracked>();
  const timings: string[] = [];
  let victim: DaemonProcess | null = null;
  let victimExitAt = 0;
  let database: DaemonDatabase;
  let db: Database;
  let front: Transport;

  // No background saves: every save point a daemon makes is one the test caused, so the passes are countable.
  const env = (daemonId: string, extra: Record<string, string> = {}) =>
    clusterDaemonEnv({ database, natsUrl, prefix, leaseTtlMs: LEASE_TTL_MS, renewMs: RENEW_MS }, daemonId, { SUPERVISOR_RUNTIME_NO_WORKER_WARNING_MS: '0', ...extra });

  const live = (): Map<string, DaemonProcess> => {
    const all = new Map(peers);
    if (victim && !exited(victim)) all.set(VICTIM, victim);
    return all;
  };

  const logsOf = (daemon: DaemonProcess | null, lines = 60) => (daemon ? daemon.logs().split('\n').slice(-lines).join('\n') : '(none)');
  const diagnosis = () => `--- victim's log (last lines) ---\n${logsOf(victim)}\n--- ${PEERS[0]} ---\n${logsOf(peers.get(PEERS[0]!) ?? null, 25)}\n--- ${PEERS[1]} ---\n${logsOf(peers.get(PEERS[1]!) ?? null, 25)}`;

  async function startVictim(point: string | null): Promise<void> {
    victim = await startDaemonProcess({ env: env(VICTIM, point ? { SUPERVISOR_RUNTIME_CRASH_POINT: point } : {}) });
    victimExitAt = 0;
    victim.child.once('exit', () => (victimExitAt = Date.now()));
  }

  /** Unfinished supervisors, each owned by a live daemon that runs it, and running on no other: how long it took. */
  async function awaitPlacement(what: string): Promise<void> {
    let problem = '';
    try {
      await eventually(
        () => `${what}: ${problem}`,
        async () => {
          const rows = await sql<{ id: string; owner: string | null; state: string }>`
            SELECT id, owner, state FROM supervisor_states WHERE state NOT IN ('completed', 'failed')`.execute(db.db);
          const daemons = live();
          const running = new Map<string, Set<string>>();
          for (const [name, daemon] of daemons) {
            const reply = await http(daemon, 'GET', '/supervisors');
            if (reply === 'lost') {
              problem = `${name} does not answer`;
              return undefined;
            }
            running.set(name, new Set((reply.body.supervisors as ListView[]).filter((view) => view.live).map((view) => view.id)));
          }
          for (const row of rows.rows) {
            const on = [...running].filter(([, ids]) => ids.has(row.id)).map(([name]) => name);
            if (row.owner === null || !daemons.has(row.owner) || on.length !== 1 || on[0] !== row.owner) {
              problem = `supervisor ${row.id} (${row.state}) is owned by ${row.owner} and runs on [${on.join(', ')}]`;
              return undefined;
            }
          }
          return true;
        },
        LEASE_TTL_MS + TAKEOVER_SLACK_MS + 15_000,
        100,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${diagnosis()}`);
    }
  }

  /** The live daemon running this supervisor; 'victim-dead' when it is the victim that died and nobody took it yet. */
  async function ownerOf(id: string): Promise<DaemonProcess | 'victim-dead'> {
    return eventually(
      `a live owner for ${id}`,
      async () => {
        const row = await sql<{ owner: string | null }>`SELECT owner FROM supervisor_states WHERE id = ${id}`.execute(db.db);
        const owner = row.rows[0]?.owner;
        if (owner === VICTIM && victim && exited(victim)) return 'victim-dead' as const;
        const daemon = owner ? live().get(owner) : undefined;
        if (!daemon) return undefined;
        const view = await http(daemon, 'GET', `/supervisors/${id}`);
        return view !== 'lost' && view.body.live === true ? daemon : undefined;
      },
      LEASE_TTL_MS + TAKEOVER_SLACK_MS + 15_000,
      50,
    );
  }

  /** One request to whoever runs the supervisor now; 'lost' when the victim died under it or before it. */
  async function onOwner(id: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Reply | 'lost'> {
    for (;;) {
      const daemon = await ownerOf(id);
      if (daemon === 'victim-dead') return 'lost';
      const reply = await http(daemon, method, path, body);
      if (reply === 'lost') return 'lost';
      // Handed over between the look-up and the request: ask the new owner.
      if (reply.status === 409 && reply.body.error === 'SupervisorOwnedElsewhereError') continue;
      if (reply.status === 503 && reply.body.error === 'SupervisorNotRunningError') continue;
      return reply;
    }
  }

  const expectOk = (reply: Reply | 'lost', what: string): Reply => {
    if (reply === 'lost' || reply.status >= 300) throw new Error(`${what}: ${reply === 'lost' ? 'no answer' : `${reply.status} ${JSON.stringify(reply.body)}`}\n${diagnosis()}`);
    return reply;
  };

  async function storedQuestion(supervisorId: string, questionId: string) {
    const rows = await sql<{ question: string; answer: string | null }>`SELECT question, answer FROM supervisor_questions WHERE supervisor_id = ${supervisorId} AND id = ${questionId}`.execute(db.db);
    return rows.rows[0] ?? null;
  }

  async function storedTask(taskId: string) {
    const rows = await sql<{ status: string; supervisor_id: string }>`SELECT status, supervisor_id FROM supervisor_tasks WHERE id = ${taskId}`.execute(db.db);
    return rows.rows[0] ?? null;
  }

  // The operations a workload makes; each returns 'lost' when the victim died before answering, and is safe to repeat.
  const ops = {
    async spawn(supervisor: Tracked, on: DaemonProcess | null): Promise<'ok' | 'lost'> {
      let daemon = on;
      if (!daemon) {
        const stored = await sql<{ id: string }>`SELECT id FROM supervisor_states WHERE id = ${supervisor.id}`.execute(db.db);
        // The victim is dead, so a row that is not there never will be: spawn it on a survivor. Otherwise ask its owner.
        if (stored.rows.length === 0) daemon = peers.get(PEERS[0]!)!;
        else {
          const owner = await ownerOf(supervisor.id);
          if (owner === 'victim-dead') return 'lost';
          daemon = owner;
        }
      }
      const reply = await http(daemon, 'POST', '/supervisors', { id: supervisor.id, name: supervisor.name });
      if (reply === 'lost') return 'lost';
      expectOk(reply, `spawn ${supervisor.id}`);
      supervisor.acked.spawned = true;
      return 'ok';
    },
    async ask(supervisor: Tracked, questionId: string, question: string): Promise<'ok' | 'lost'> {
      const reply = await onOwner(supervisor.id, 'POST', `/supervisors/${supervisor.id}/questions`, { questionId, question, choices: ['yes', 'no'] });
      supervisor.replies.push(`ask ${questionId} ${reply === 'lost' ? 'lost' : reply.status}`);
      if (reply === 'lost') return 'lost';
      expectOk(reply, `ask ${questionId}`);
      supervisor.acked.questions.set(questionId, { question, answer: null });
      return 'ok';
    },
    async task(supervisor: Tracked, taskId: string, description: string): Promise<'ok' | 'lost'> {
      const reply = await onOwner(supervisor.id, 'POST', `/supervisors/${supervisor.id}/tasks`, { taskId, description });
      if (reply === 'lost') return 'lost';
      expectOk(reply, `spawn task ${taskId}`);
      supervisor.acked.tasks.set(taskId, { description, completed: false });
      return 'ok';
    },
    /** Over NATS: acknowledged once JetStream stored it; then applied by the owner, whoever records it. */
    async answerOverNats(supervisor: Tracked, questionId: string, answer: string, copies: () => boolean = () => false): Promise<'ok'> {
      let copy = 0;
      do {
        copy += 1;
        await front.publish(answersSubject(supervisor.id, prefix), bytes({ questionId, answer }), { msgId: `answer-${questionId}-${copy}` });
        if (copies()) await sleep(100);
      } while (copies() && copy < 60);
      supervisor.acked.questions.get(questionId)!.answer = answer;
      await eventually(`the answer to ${questionId} to be applied`, async () => ((await storedQuestion(supervisor.id, questionId))?.answer === answer ? true : undefined), LEASE_TTL_MS + TAKEOVER_SLACK_MS + 15_000, 50).catch((error: Error) => {
        throw new Error(`${error.message}\n${diagnosis()}`);
      });
      return 'ok';
    },
    async completeTaskOverNats(supervisor: Tracked, taskId: string): Promise<'ok'> {
      await front.publish(taskEventsSubject(taskId, prefix), bytes({ taskId, type: 'completed', result: `done ${taskId}` }), { msgId: `done-${taskId}` });
      supervisor.acked.tasks.get(taskId)!.completed = true;
      await eventually(`task ${taskId} to complete`, async () => ((await storedTask(taskId))?.status === 'completed' ? true : undefined), LEASE_TTL_MS + TAKEOVER_SLACK_MS + 15_000, 50).catch((error: Error) => {
        throw new Error(`${error.message}\n${diagnosis()}`);
      });
      return 'ok';
    },
    async answerOverHttp(supervisor: Tracked, questionId: string, answer: string): Promise<'ok' | 'lost'> {
      const reply = await onOwner(supervisor.id, 'POST', `/supervisors/${supervisor.id}/questions/${questionId}/answer`, { answer });
      if (reply === 'lost') return 'lost';
      expectOk(reply, `answer ${questionId}`);
      supervisor.acked.questions.get(questionId)!.answer = answer;
      return 'ok';
    },
    async complete(supervisor: Tracked): Promise<'ok' | 'lost'> {
      const reply = await onOwner(supervisor.id, 'POST', `/supervisors/${supervisor.id}/events`, { type: 'COMPLETE', summary: 'done' });
      if (reply === 'lost') return 'lost';
      // A retry after a COMPLETE that committed is refused as final; the state says which.
      if (reply.status === 409 && String(reply.body.message).includes('completed')) {
        supervisor.acked.completed = true;
        return 'ok';
      }
      expectOk(reply, `complete ${supervisor.id}`);
      supervisor.acked.completed = true;
      return 'ok';
    },
    /** A message to another supervisor, sent by whoever runs the sender now; its retry (same id and text) is a replay. */
    async message(supervisor: Tracked, to: Tracked, messageId: string, body: string): Promise<'ok' | 'lost'> {
      const reply = await onOwner(supervisor.id, 'POST', `/supervisors/${supervisor.id}/messages`, { to: to.id, body, messageId });
      supervisor.replies.push(`message ${messageId} ${reply === 'lost' ? 'lost' : reply.status}`);
      if (reply === 'lost') return 'lost';
      expectOk(reply, `message ${messageId}`);
      supervisor.acked.sent.set(messageId, { to: to.id, body });
      return 'ok';
    },
    async received(receiver: Tracked, from: Tracked, messageId: string): Promise<'ok'> {
      await eventually(`message ${messageId} to be taken in by ${receiver.id}`, async () => {
        const rows = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_messages WHERE supervisor_id = ${receiver.id} AND direction = 'received' AND peer_id = ${from.id} AND message_id = ${messageId}`.execute(db.db);
        return Number(rows.rows[0]?.n) > 0 ? true : undefined;
      }, LEASE_TTL_MS + TAKEOVER_SLACK_MS + 15_000, 50).catch((error: Error) => {
        throw new Error(`${error.message}\n${diagnosis()}`);
      });
      return 'ok';
    },
    /** The victim resumes its own supervisor (claim, restore): the way into the claim and restore windows. */
    async resumeOnVictim(supervisor: Tracked): Promise<'ok' | 'lost'> {
      if (!victim || exited(victim)) return 'ok';
      const reply = await http(victim, 'POST', `/supervisors/${supervisor.id}/resume`);
      if (reply === 'lost') return 'lost';
      expectOk(reply, `resume ${supervisor.id}`);
      return 'ok';
    },
  };

  function track(name: string): Tracked {
    const supervisor: Tracked = { id: randomUUID(), name, replies: [], acked: { spawned: false, completed: false, questions: new Map(), tasks: new Map(), sent: new Map() } };
    tracked.set(supervisor.id, supervisor);
    return supervisor;
  }

  /** Every acknowledged write is stored, as acknowledged. */
  async function checkAcknowledged(): Promise<void> {
    for (const supervisor of tracked.values()) {
      if (!supervisor.acked.spawned) continue;
      const row = await sql<{ state: string; name: string }>`SELECT state, name FROM supervisor_states WHERE id = ${supervisor.id}`.execute(db.db);
      expect(row.rows[0]?.name, `supervisor ${supervisor.id}`).toBe(supervisor.name);
      if (supervisor.acked.completed) expect(row.rows[0]?.state).toBe('completed');
      for (const [questionId, question] of supervisor.acked.questions) {
        const stored = await storedQuestion(supervisor.id, questionId);
        expect(stored?.question, `question ${questionId}`).toBe(question.question);
        if (question.answer !== null) expect(stored?.answer, `answer to ${questionId}`).toBe(question.answer);
      }
      for (const [taskId, task] of supervisor.acked.tasks) {
        const stored = await storedTask(taskId);
        expect(stored?.supervisor_id, `task ${taskId}`).toBe(supervisor.id);
        if (task.completed) expect(stored?.status, `task ${taskId}`).toBe('completed');
      }
      for (const [messageId, message] of supervisor.acked.sent) {
        const sent = await sql<{ peer_id: string; body: string }>`SELECT peer_id, body FROM supervisor_messages WHERE supervisor_id = ${supervisor.id} AND direction = 'sent' AND message_id = ${messageId}`.execute(db.db);
        expect(sent.rows, `message ${messageId} sent`).toEqual([{ peer_id: message.to, body: message.body }]);
      }
    }
  }

  /** Every message sent was taken in by its receiver exactly once (after the outbox drained and the inbox was stamped). */
  async function checkMessagesOnce(): Promise<void> {
    const pairs = await sql<{ message_id: string; sender: string; receiver: string; received: string }>`
      SELECT s.message_id, s.supervisor_id AS sender, s.peer_id AS receiver,
        (SELECT count(*) FROM supervisor_messages r WHERE r.supervisor_id = s.peer_id AND r.direction = 'received' AND r.peer_id = s.supervisor_id AND r.message_id = s.message_id) AS received
      FROM supervisor_messages s WHERE s.direction = 'sent'`.execute(db.db);
    for (const pair of pairs.rows) expect(Number(pair.received), `message ${pair.message_id} from ${pair.sender} to ${pair.receiver}`).toBe(1);
    const orphans = await sql<{ n: string }>`
      SELECT count(*) AS n FROM supervisor_messages r WHERE r.direction = 'received'
        AND NOT EXISTS (SELECT 1 FROM supervisor_messages s WHERE s.supervisor_id = r.peer_id AND s.direction = 'sent' AND s.message_id = r.message_id)`.execute(db.db);
    expect(Number(orphans.rows[0]?.n), 'messages taken in that nobody sent').toBe(0);
  }

  /** What the tables say happened, counted: each answer, task outcome, ask and spawn applied once; nothing twice. */
  async function checkAppliedOnce(): Promise<void> {
    const counts = await sql<{ id: string; state: string; restoration_count: number; role: string | null; n: string; seqs: string; max_seq: number | null }>`
      SELECT s.id, s.state, s.restoration_count, c.role, count(c.seq) AS n,
        (SELECT count(*) FROM supervisor_conversation a WHERE a.supervisor_id = s.id) AS seqs,
        (SELECT max(seq) FROM supervisor_conversation a WHERE a.supervisor_id = s.id) AS max_seq
      FROM supervisor_states s LEFT JOIN supervisor_conversation c ON c.supervisor_id = s.id
      GROUP BY s.id, s.state, s.restoration_count, c.role`.execute(db.db);
    const questions = await sql<{ supervisor_id: string; asked: string; answered: string }>`
      SELECT supervisor_id, count(*) AS asked, count(answer) AS answered FROM supervisor_questions GROUP BY supervisor_id`.execute(db.db);
    const tasks = await sql<{ supervisor_id: string; spawned: string; finished: string }>`
      SELECT supervisor_id, count(*) AS spawned, count(*) FILTER (WHERE status IN ('completed', 'failed')) AS finished FROM supervisor_tasks GROUP BY supervisor_id`.execute(db.db);
    const messages = await sql<{ supervisor_id: string; sent: string; received: string }>`
      SELECT supervisor_id, count(*) FILTER (WHERE direction = 'sent') AS sent, count(*) FILTER (WHERE direction = 'received') AS received FROM supervisor_messages GROUP BY supervisor_id`.execute(db.db);
    const bySupervisor = new Map<string, { state: string; restorations: number; roles: Record<string, number>; entries: number; maxSeq: number | null }>();
    for (const row of counts.rows) {
      const entry = bySupervisor.get(row.id) ?? { state: row.state, restorations: Number(row.restoration_count), roles: {}, entries: Number(row.seqs), maxSeq: row.max_seq === null ? null : Number(row.max_seq) };
      if (row.role) entry.roles[row.role] = Number(row.n);
      bySupervisor.set(row.id, entry);
    }
    for (const [id, entry] of bySupervisor) {
      const asked = Number(questions.rows.find((row) => row.supervisor_id === id)?.asked ?? 0);
      const answered = Number(questions.rows.find((row) => row.supervisor_id === id)?.answered ?? 0);
      const spawned = Number(tasks.rows.find((row) => row.supervisor_id === id)?.spawned ?? 0);
      const finished = Number(tasks.rows.find((row) => row.supervisor_id === id)?.finished ?? 0);
      const sent = Number(messages.rows.find((row) => row.supervisor_id === id)?.sent ?? 0);
      const received = Number(messages.rows.find((row) => row.supervisor_id === id)?.received ?? 0);
      const started = entry.state === 'initializing' ? 0 : 1;
      const what = `conversation of ${id} (${JSON.stringify(entry)})`;
      // Seqs 0..n-1 with no gap and no repeat.
      expect(entry.maxSeq === null ? 0 : entry.maxSeq + 1, what).toBe(entry.entries);
      expect(entry.roles.user ?? 0, `${what}: one entry per answer and per message taken in`).toBe(answered + received);
      expect(entry.roles.tool ?? 0, `${what}: one entry per task outcome`).toBe(finished);
      expect(entry.roles.assistant ?? 0, `${what}: one entry per ask, per task spawn and per message sent`).toBe(asked + spawned + sent);
      expect(entry.roles.system ?? 0, `${what}: START, one per restoration, COMPLETE`).toBe(started + entry.restorations + (entry.state === 'completed' ? 1 : 0));
    }
    // One tasks.spawn message per task in the outbox (a restore on NATS never spawns again).
    const spawns = await sql<{ task_id: string; n: string }>`
      SELECT payload->>'taskId' AS task_id, count(*) AS n FROM supervisor_outbox WHERE subject = ${`${prefix}tasks.spawn`} GROUP BY 1`.execute(db.db);
    const allTasks = await sql<{ id: string }>`SELECT id FROM supervisor_tasks`.execute(db.db);
    expect(new Map(spawns.rows.map((row) => [row.task_id, Number(row.n)]))).toEqual(new Map(allTasks.rows.map((row) => [row.id, 1])));
    // The inbox applied each answer, task outcome and message at most once.
    const applied = await sql<{ key: string; n: string }>`
      SELECT supervisor_id || ':' || kind || ':' || coalesce(payload->>'questionId', payload->>'taskId', (payload->>'from') || '/' || (payload->>'messageId')) || ':' || coalesce(payload->>'type', '') AS key, count(*) AS n
      FROM supervisor_inbox WHERE outcome = 'applied' GROUP BY 1 HAVING count(*) > 1`.execute(db.db);
    expect(applied.rows, 'inbox rows applied twice').toEqual([]);
    // No fork in any checkpoint sequence.
    const forks = await sql<{ n: string }>`SELECT count(*) AS n FROM (SELECT supervisor_id, step FROM supervisor_checkpoints GROUP BY 1, 2 HAVING count(*) > 1) AS f`.execute(db.db);
    expect(Number(forks.rows[0]?.n)).toBe(0);
  }

  /** The outbox drains and the inbox is all stamped (what the survivors owe the crashed daemon's work). */
  async function checkDrained(): Promise<void> {
    await eventually(
      'the outbox to drain and every inbox row to be stamped',
      async () => {
        const unsent = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_outbox WHERE sent_at IS NULL`.execute(db.db);
        const unstamped = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_inbox WHERE applied_at IS NULL`.execute(db.db);
        return Number(unsent.rows[0]?.n) === 0 && Number(unstamped.rows[0]?.n) === 0 ? true : undefined;
      },
      10_000,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${diagnosis()}`);
    });
  }

  /** The line the victim wrote just before SIGKILL: when, and what its window held (the rows just published). */
  function crashLine(): { time: number; msgIds: string[] } {
    for (const line of (victim?.logs() ?? '').split('\n')) {
      if (!line.includes('"crashPoint"')) continue;
      try {
        // The line of the crash itself (it counts its pass), not the one that armed the point at start.
        const { time, msgIds, pass } = JSON.parse(line) as { time?: unknown; msgIds?: unknown; pass?: unknown };
        if (typeof time === 'number' && typeof pass === 'number') return { time, msgIds: Array.isArray(msgIds) ? msgIds.filter((id): id is string => typeof id === 'string') : [] };
      } catch {
        // not the JSON line
      }
    }
    throw new Error(`the victim's log has no crash point line\n${diagnosis()}`);
  }

  /** The outbox rows named in the victim's crash line exist and were marked sent after the crash (by a survivor). */
  async function expectMarkedAfterCrash(what: string): Promise<void> {
    const { time, msgIds } = crashLine();
    expect(msgIds.length, what).toBeGreaterThan(0);
    const rows = await sql<{ msg_id: string; sent_at: Date | null }>`SELECT msg_id, sent_at FROM supervisor_outbox WHERE msg_id = ANY(${msgIds}::text[])`.execute(db.db);
    expect(rows.rows.map((row) => row.msg_id).sort(), what).toEqual([...msgIds].sort());
    for (const row of rows.rows) expect(row.sent_at?.getTime() ?? 0, `${what}: ${row.msg_id}`).toBeGreaterThanOrEqual(time);
  }

  /** What shows that the crash fell in the window the point names, and that the survivors closed it. */
  async function checkWindow(name: string, supervisor: Tracked, ids: { q1: string; m1: string; point: string }): Promise<void> {
    const row = (await sql<{ epoch: string; restoration_count: number }>`SELECT epoch, restoration_count FROM supervisor_states WHERE id = ${supervisor.id}`.execute(db.db)).rows[0]!;
    const inbox = await sql<{ received_by: string; outcome: string | null }>`
      SELECT received_by, outcome FROM supervisor_inbox WHERE supervisor_id = ${supervisor.id} AND payload->>'questionId' = ${ids.q1} ORDER BY id`.execute(db.db);
    const what = `${name}: replies ${JSON.stringify(supervisor.replies)}, row ${JSON.stringify(row)}, inbox ${JSON.stringify(inbox.rows)}`;
    if (ids.point === 'save.after-commit:3') {
      // The message committed and its sender's caller never heard: the retry is a replay (200), sent and taken in once.
      expect(supervisor.replies.slice(0, 2), what).toEqual([`message ${ids.m1} lost`, `message ${ids.m1} 200`]);
    } else if (ids.point === 'outbox.after-publish:3') {
      // The rows the victim published just before it died (the message, step 3, when the passes fall as planned) were
      // marked sent by a survivor, after the crash.
      await expectMarkedAfterCrash(what);
    } else if (name === 'save.before-statement') {
      // The ask never reached the database: its retry on the survivor asked it (201), once.
      expect(supervisor.replies.slice(1, 3), what).toEqual([`ask ${ids.q1} lost`, `ask ${ids.q1} 201`]);
    } else if (name === 'save.after-commit') {
      // The ask committed and its caller never heard: the retry is recognised as a replay (200), not asked again.
      expect(supervisor.replies.slice(1, 3), what).toEqual([`ask ${ids.q1} lost`, `ask ${ids.q1} 200`]);
    } else if (name === 'outbox.after-publish') {
      // The rows the victim published just before it died (the ASK, step 4, when the passes fall as planned; on a loaded
      // machine the relay may batch differently) were marked sent by a survivor, after the crash.
      await expectMarkedAfterCrash(what);
    } else if (name === 'inbox.after-record') {
      // The victim recorded a copy and died before acking it; the survivors applied the first answer, the rest are duplicates.
      expect(inbox.rows.some((entry) => entry.received_by === VICTIM), what).toBe(true);
      expect(inbox.rows.filter((entry) => entry.outcome === 'applied').length, what).toBe(1);
    } else if (name === 'inbox.after-apply') {
      // The victim applied the one answer and died before stamping it: the new owner found it applied already.
      expect(inbox.rows.map((entry) => entry.outcome), what).toEqual(['duplicate']);
    } else if (name === 'claim.after-commit') {
      // Spawned at epoch 1, claimed by the victim's resume (2), taken over (3): restored once, by the survivor.
      expect([Number(row.epoch), row.restoration_count], what).toEqual([3, 1]);
    } else if (name === 'restore.after-restored') {
      // The victim's RESTORED committed (1) before it died, and the survivor's takeover restored it again (2).
      expect([Number(row.epoch), row.restoration_count], what).toEqual([3, 2]);
    }
  }

  beforeAll(async () => {
    database = await createDaemonDatabase(target!.database, 'sr_crashpts');
    db = await openDatabase({ databaseUrl: database.env.DATABASE_URL, poolSize: 2 });
    front = createNatsTransport({ servers: natsUrl, subjectPrefix: prefix, name: 'crash-points-front', logger: quietLogger });
    await front.start();
    const started = await Promise.all(PEERS.map((name) => startDaemonProcess({ env: env(name) })));
    PEERS.forEach((name, index) => peers.set(name, started[index]!));
    // Background work on every daemon, taken over when the victim dies: a question open and a task running each.
    await startVictim(null);
    const all = [...PEERS.map((name) => [name, peers.get(name)!] as const), [VICTIM, victim!] as const];
    await Promise.all(
      all.map(async ([name, daemon]) => {
        for (let n = 0; n < 2; n++) {
          const supervisor = track(`${name}-background-${n}`);
          await ops.spawn(supervisor, daemon);
          expect(await ops.ask(supervisor, `bq-${name}-${n}`, `Background ${n} on ${name}?`)).toBe('ok');
          expect(await ops.task(supervisor, `bt-${name}-${n}`, `background ${n}`)).toBe('ok');
        }
      }),
    );
    // The victim's first life ends as an unarmed kill -9; its supervisors move to the peers before the sweep.
    await victim!.stop('SIGKILL');
    await awaitPlacement('the background supervisors to run on the peers');
  }, 60_000);

  afterAll(async () => {
    if (victim) await victim.stop('SIGKILL').catch(() => undefined);
    for (const daemon of peers.values()) await daemon.stop('SIGKILL').catch(() => undefined);
    await front?.close();
    await db?.close();
    await database?.cleanup();
    await deleteStreams(natsUrl, prefix);
    if (timings.length > 0) console.info(`[crash-points]\n${timings.join('\n')}`);
  });

  it('an unknown crash point stops the daemon at start, naming every valid one', async () => {
    const result = await runBin(['daemon', '--port', '0'], { SUPERVISOR_RUNTIME_CRASH_POINT: 'save.after-comit' }, 20_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Invalid setting SUPERVISOR_RUNTIME_CRASH_POINT: "save.after-comit"');
    for (const name of CRASH_POINT_NAMES) expect(result.stderr).toContain(name);
  });

  for (const [index, point] of SWEEP.entries()) {
    it(`crash at ${point}: taken over within TTL + ${TAKEOVER_SLACK_MS / 1000} s, nothing acknowledged lost, nothing applied twice`, { timeout: 60_000 }, async () => {
      const started = Date.now();
      await startVictim(point);
      const supervisor = track(`victim-${index}`);
      const [q1, q2, t1, m1, m2] = [`q1-${index}`, `q2-${index}`, `t1-${index}`, `m1-${index}`, `m2-${index}`];
      // A background supervisor on a peer: the victim's supervisor writes to it first, and it answers later.
      const peer = [...tracked.values()].find((candidate) => candidate.name === `${PEERS[0]}-background-0`)!;
      const recordPoint = point.startsWith('inbox.after-record');
      // The workload, in order; the victim runs the supervisor until it dies, the survivors after.
      const script: Array<() => Promise<'ok' | 'lost'>> = [
        () => ops.spawn(supervisor, supervisor.acked.spawned || victimExitAt !== 0 ? null : victim),
        // Any daemon's consumer may record the message for the peer: at the record point it would race q1's answer
        // copies for the victim's first record, so there it is sent once the victim is gone (the save passes count on).
        recordPoint ? () => ops.ask(supervisor, `q0-${index}`, `Warm up ${index}?`) : () => ops.message(supervisor, peer, m1, `Starting run ${index}; will report back.`),
        () => ops.ask(supervisor, q1, `Ship ${index}?`),
        () => ops.task(supervisor, t1, `build ${index}`),
        () => ops.ask(supervisor, q2, `Tag ${index}?`),
        // For the record point, copies (new message ids, the same answer) until the victim takes one; the first wins.
        () => ops.answerOverNats(supervisor, q1, 'yes', () => recordPoint && victimExitAt === 0),
        () => ops.completeTaskOverNats(supervisor, t1),
        () => ops.resumeOnVictim(supervisor),
        ...(recordPoint ? [() => ops.message(supervisor, peer, m1, `Starting run ${index}; will report back.`)] : []),
        () => ops.message(peer, supervisor, m2, `Noted run ${index}.`),
        // Taken in before the supervisor completes (a message that arrives after COMPLETE is refused, by design).
        () => ops.received(supervisor, peer, m2),
        () => ops.answerOverHttp(supervisor, q2, 'no'),
        ...(recordPoint ? [() => ops.answerOverHttp(supervisor, `q0-${index}`, 'yes')] : []),
        () => ops.complete(supervisor),
      ];
      let crashHandled = false;
      const handleCrash = async () => {
        crashHandled = true;
        await eventually('the victim to kill itself', () => (victimExitAt !== 0 ? true : undefined), 15_000, 20).catch(() => {
          throw new Error(`the victim did not reach crash point ${point}\n${diagnosis()}`);
        });
        expect(victim!.child.signalCode, diagnosis()).toBe('SIGKILL');
        expect(victim!.logs()).toContain(`crash point ${point.split(':')[0]} reached`);
        await awaitPlacement(`after the crash at ${point}, every unfinished supervisor on exactly one live daemon`);
        const takeoverMs = Date.now() - victimExitAt;
        timings.push(`${point}: crashed ${victimExitAt - started} ms after the start, everything running elsewhere ${takeoverMs} ms after the crash`);
        expect(takeoverMs, diagnosis()).toBeLessThanOrEqual(LEASE_TTL_MS + TAKEOVER_SLACK_MS);
        await checkAcknowledged();
      };
      for (const operation of script) {
        let outcome = await operation();
        if (!crashHandled && (outcome === 'lost' || victimExitAt !== 0)) await handleCrash();
        // The operation the victim died under, retried with its ids on the survivor that runs the supervisor now.
        if (outcome === 'lost') outcome = await operation();
        expect(outcome, diagnosis()).toBe('ok');
      }
      if (!crashHandled) await handleCrash();
      expect((await sql<{ state: string }>`SELECT state FROM supervisor_states WHERE id = ${supervisor.id}`.execute(db.db)).rows[0]?.state).toBe('completed');
      await checkDrained();
      await checkAcknowledged();
      await checkAppliedOnce();
      await checkMessagesOnce();
      await checkWindow(point.split(':')[0]!, supervisor, { q1, m1, point });
    });
  }

  it('after the sweep: the background work finishes on the survivors, each question delivered and answered once, each task spawned once on NATS', { timeout: 60_000 }, async () => {
    for (const supervisor of tracked.values()) {
      if (supervisor.acked.completed) continue;
      for (const [questionId, question] of supervisor.acked.questions) if (question.answer === null) await ops.answerOverNats(supervisor, questionId, 'yes');
      for (const [taskId, task] of supervisor.acked.tasks) if (!task.completed) await ops.completeTaskOverNats(supervisor, taskId);
      expect(await ops.complete(supervisor)).toBe('ok');
    }
    const unfinished = await sql<{ n: string }>`SELECT count(*) AS n FROM supervisor_states WHERE state <> 'completed'`.execute(db.db);
    expect(Number(unfinished.rows[0]?.n)).toBe(0);
    await checkDrained();
    await checkAcknowledged();
    await checkAppliedOnce();
    await checkMessagesOnce();

    // What reached NATS: every question delivered at least once and never twice with one delivery count; every task
    // spawned exactly once; no message id twice.
    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const seen: Array<{ subject: string; msgId: string | undefined; body: Record<string, unknown> }> = [];
      for (const stream of Object.values(streamNames(prefix))) {
        const info = await jsm.streams.info(stream);
        for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
          const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          if (message) seen.push({ subject: message.subject, msgId: message.header?.get('Nats-Msg-Id'), body: message.json<Record<string, unknown>>() });
        }
      }
      // Outbound exactly once: each outbox row is in JetStream once, under its own id, and nothing else went out.
      const outbound = seen.filter((m) => /\.(questions|state|messages)$/.test(m.subject) || m.subject === `${prefix}tasks.spawn`).map((m) => m.msgId ?? '(no id)').sort();
      const rows = await sql<{ msg_id: string }>`SELECT msg_id FROM supervisor_outbox ORDER BY msg_id`.execute(db.db);
      expect(outbound, 'outbound messages in JetStream against the outbox rows').toEqual(rows.rows.map((row) => row.msg_id).sort());
      const deliveries = new Map<string, number[]>();
      for (const message of seen.filter((m) => m.subject.endsWith('.questions'))) {
        const key = String(message.body.questionId);
        deliveries.set(key, [...(deliveries.get(key) ?? []), Number(message.body.deliveryCount)]);
      }
      const spawnsPerTask = new Map<string, number>();
      for (const message of seen.filter((m) => m.subject === `${prefix}tasks.spawn`)) spawnsPerTask.set(String(message.body.taskId), (spawnsPerTask.get(String(message.body.taskId)) ?? 0) + 1);
      for (const supervisor of tracked.values()) {
        for (const questionId of supervisor.acked.questions.keys()) {
          const counts = deliveries.get(questionId) ?? [];
          expect(counts.length, `deliveries of ${questionId}`).toBeGreaterThanOrEqual(1);
          expect(new Set(counts).size, `deliveries of ${questionId}: ${counts.join(', ')}`).toBe(counts.length);
        }
        for (const taskId of supervisor.acked.tasks.keys()) expect(spawnsPerTask.get(taskId), `tasks.spawn for ${taskId}`).toBe(1);
      }
    } finally {
      await nc.close();
    }
  });
});
