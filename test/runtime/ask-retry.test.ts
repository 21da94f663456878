// A retried ask (the caller's questionId, the same question) that races its original, which is answered meanwhile,
// must not ask the answered question again: the first answer wins.

import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

/** Holds the reply of the next read of supervisor_questions for `holdMs` (a slow read; nothing else changes). */
class SlowNextQuestionRead implements KyselyPlugin {
  private armed = false;
  private readonly held = new WeakSet<object>();
  seen: Promise<void> = Promise.resolve();
  private onSeen: () => void = () => undefined;
  constructor(private readonly holdMs: number) {}
  arm(): void {
    this.armed = true;
    this.seen = new Promise((resolve) => (this.onSeen = resolve));
  }
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (this.armed && args.node.kind === 'SelectQueryNode' && JSON.stringify(args.node).includes('supervisor_questions')) {
      this.armed = false;
      this.held.add(args.queryId);
    }
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.held.has(args.queryId)) {
      this.onSeen();
      await new Promise((resolve) => setTimeout(resolve, this.holdMs));
    }
    return args.result;
  }
}

// Postgres only: on PGlite's one connection a held read holds every statement.
const postgres = (await databaseTargets()).find((candidate) => candidate.name === 'postgres');
(postgres ? describe : describe.skip)('an ask retried while its original is answered (postgres)', () => {
  const database = useIsolatedDatabase(postgres ?? { name: 'pglite', url: undefined });

  it('the retry whose check read was slow is a replay or asks first, never a second ask of the answered question', async () => {
    const plugin = new SlowNextQuestionRead(400);
    const runtime = createRuntime({ database: { ...database(), db: database().db.withPlugin(plugin) }, heartbeatIntervalMs: 0 });
    try {
      const supervisor = await runtime.spawn({ name: 'asker' });
      const ask = { questionId: 'q1', question: 'Deploy?', choices: ['yes', 'no'] };
      plugin.arm();
      // The client's retry reads supervisor_questions first, and slowly...
      const retry = runtime.askQuestion(supervisor.id, ask);
      await plugin.seen;
      // ...while the original commits and the human answers at once.
      await runtime.askQuestion(supervisor.id, ask);
      await runtime.answerQuestion(supervisor.id, 'q1', 'no');
      await retry;
      expect(supervisor.snapshot.context.pendingQuestions.map((question) => question.id)).not.toContain('q1');
      expect((await runtime.questions(supervisor.id, { answered: true })).map((question) => [question.id, question.answer])).toEqual([['q1', 'no']]);
      // The first answer stays the answer.
      await expect(runtime.answerQuestion(supervisor.id, 'q1', 'yes')).rejects.toMatchObject({ name: 'QuestionAlreadyAnsweredError', firstAnswer: 'no' });
      expect(supervisor.snapshot.context.answeredQuestionCount).toBe(1);
    } finally {
      await runtime.shutdown({ closeDatabase: false });
    }
  });
});
