// A question asked → delivered to a subscriber on the transport, one at a time: through the runtime (transition, save
// point with its outbox row, relay, publish) against the floor of a database commit followed by a publish of the same
// message, received by the same kind of durable subscriber.

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Database } from '../src/persistence/database.js';
import { silentLogger } from '../src/runtime/logger.js';
import { createRuntime } from '../src/runtime/supervisor-runtime.js';
import { questionsSubject } from '../src/transport/subjects.js';
import type { Transport } from '../src/transport/transport.js';

export interface DeliveryFigures {
  questions: number;
  runtimeP50Ms: number;
  runtimeP99Ms: number;
  floorP50Ms: number;
  floorP99Ms: number;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
};

/** Resolves the promise registered for a question id when the subscriber receives it. */
class Arrivals {
  readonly #waiting = new Map<string, (at: number) => void>();
  readonly #early = new Map<string, number>();
  arrived(questionId: string): void {
    const at = performance.now();
    const resolve = this.#waiting.get(questionId);
    if (resolve) {
      this.#waiting.delete(questionId);
      resolve(at);
    } else {
      this.#early.set(questionId, at);
    }
  }
  next(questionId: string): Promise<number> {
    const early = this.#early.get(questionId);
    if (early !== undefined) {
      this.#early.delete(questionId);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`question ${questionId} was not delivered within 30 s`)), 30_000);
      this.#waiting.set(questionId, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/** `transport` must be started, with the prefix the runtime uses; it is left open. */
export async function measureQuestionDelivery(database: Database, transport: Transport, count: number): Promise<DeliveryFigures> {
  const prefix = transport.subjectPrefix;
  const arrivals = new Arrivals();
  const subscription = await transport.subscribe(
    { durable: `bench_questions_${randomUUID().slice(0, 8)}`, filterSubject: `${prefix}supervisors.*.questions` },
    async (message) => {
      const body = message.json() as { questionId?: string };
      if (typeof body.questionId === 'string') arrivals.arrived(body.questionId);
      await message.ack();
    },
  );
  await sql`CREATE TABLE IF NOT EXISTS bench_questions (id text PRIMARY KEY, payload jsonb NOT NULL)`.execute(database.db);
  const runtime = createRuntime({ database, transport, subjectPrefix: prefix, heartbeatIntervalMs: 0, logger: silentLogger });
  try {
    await runtime.start({ restore: false });
    const supervisor = await runtime.spawn({ name: 'asker' });
    const runtimeMs: number[] = [];
    const floorMs: number[] = [];
    const floorSupervisor = randomUUID();
    const warmup = Math.min(20, Math.ceil(count / 10));
    // Interleaved, so a noisy neighbour slows both alike.
    for (let n = 0; n < count + warmup; n++) {
      const askedAt = performance.now();
      // The runtime picks the id (a caller's own id costs one more read, to refuse a reused one); an arrival before
      // askQuestion resolves is kept for it.
      const { questionId } = await runtime.askQuestion(supervisor.id, { question: `Question ${n}: which of the two designs should the team build first?` });
      const deliveredAt = await arrivals.next(questionId);
      if (n >= warmup) runtimeMs.push(deliveredAt - askedAt);
      await runtime.answerQuestion(supervisor.id, questionId, 'the first');

      const floorId = randomUUID();
      const payload = { v: 1, supervisorId: floorSupervisor, questionId: floorId, question: `Question ${n}: which of the two designs should the team build first?` };
      const started = performance.now();
      await sql`INSERT INTO bench_questions (id, payload) VALUES (${floorId}, ${JSON.stringify(payload)}::jsonb)`.execute(database.db);
      await transport.publish(questionsSubject(floorSupervisor, prefix), new TextEncoder().encode(JSON.stringify(payload)), { msgId: floorId });
      const floorDelivered = await arrivals.next(floorId);
      if (n >= warmup) floorMs.push(floorDelivered - started);
    }
    return {
      questions: count,
      runtimeP50Ms: percentile(runtimeMs, 50),
      runtimeP99Ms: percentile(runtimeMs, 99),
      floorP50Ms: percentile(floorMs, 50),
      floorP99Ms: percentile(floorMs, 99),
    };
  } finally {
    await runtime.shutdown({ closeDatabase: false, closeTransport: false });
    await subscription.stop();
  }
}
