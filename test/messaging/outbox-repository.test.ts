import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { claimOutboxBatch, countUnsentOutbox, markOutboxSent, pruneSentOutbox } from '../../src/persistence/outbox-repository.js';
import type { Executor } from '../../src/persistence/supervisor-repository.js';
import { questionsSubject } from '../../src/transport/subjects.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

async function insertRows(db: Executor, rows: Array<{ supervisorId: string; n: number; prefix?: string }>): Promise<void> {
  await db
    .insertInto('supervisor_outbox')
    .values(
      rows.map((row) => ({
        supervisor_id: row.supervisorId,
        subject: questionsSubject(row.supervisorId, row.prefix ?? ''),
        payload: JSON.stringify({ n: row.n }),
        msg_id: `${row.supervisorId}:${row.n}:0`,
      })),
    )
    .execute();
}

for (const target of await databaseTargets()) {
  describe(`outbox repository on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);
    const db = () => database().db;

    it('claims unsent rows oldest first up to the limit; marked rows are neither claimed nor counted again', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      await insertRows(db(), [
        { supervisorId: a, n: 1 },
        { supervisorId: b, n: 1 },
        { supervisorId: a, n: 2 },
      ]);
      expect(await countUnsentOutbox(db())).toBe(3);

      const first = await db().transaction().execute(async (trx) => {
        const rows = await claimOutboxBatch(trx, 2);
        expect(await markOutboxSent(trx, rows.map((row) => row.id))).toBe(2);
        return rows;
      });
      expect(first.map((row) => row.msgId)).toEqual([`${a}:1:0`, `${b}:1:0`]);
      expect(first[0]).toMatchObject({ supervisorId: a, subject: questionsSubject(a), payload: { n: 1 } });
      expect(await countUnsentOutbox(db())).toBe(1);

      const rest = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10));
      expect(rest.map((row) => row.msgId)).toEqual([`${a}:2:0`]);
    });

    it('a claim rolled back leaves its rows unsent, in their place', async () => {
      const a = randomUUID();
      await insertRows(db(), [1, 2, 3].map((n) => ({ supervisorId: a, n })));
      await expect(
        db().transaction().execute(async (trx) => {
          await claimOutboxBatch(trx, 2);
          throw new Error('relay crashed before marking');
        }),
      ).rejects.toThrow(/relay crashed/);
      const again = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10));
      expect(again.map((row) => row.msgId)).toEqual([1, 2, 3].map((n) => `${a}:${n}:0`));
    });

    it('rows under another subject prefix are left for that prefix’s relay', async () => {
      const [mine, theirs] = [randomUUID(), randomUUID()];
      await insertRows(db(), [
        { supervisorId: theirs, n: 1, prefix: 'other.' },
        { supervisorId: mine, n: 1, prefix: 'mine.' },
      ]);
      expect(await countUnsentOutbox(db(), { subjectPrefix: 'mine.' })).toBe(1);
      // The empty prefix means subjects starting with supervisors. or tasks., so prefixed rows are not its own either.
      expect(await countUnsentOutbox(db(), { subjectPrefix: '' })).toBe(0);
      expect(await countUnsentOutbox(db())).toBe(2);
      const claimed = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10, { subjectPrefix: 'mine.' }));
      expect(claimed.map((row) => row.supervisorId)).toEqual([mine]);
    });

    it('prunes only rows sent before the cutoff', async () => {
      const a = randomUUID();
      await insertRows(db(), [1, 2, 3].map((n) => ({ supervisorId: a, n })));
      const rows = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10));
      await db().transaction().execute((trx) => markOutboxSent(trx, [rows[0]!.id, rows[1]!.id]));
      await sql`UPDATE supervisor_outbox SET sent_at = now() - interval '2 hours' WHERE id = ${rows[0]!.id}`.execute(db());

      expect(await pruneSentOutbox(db(), new Date(Date.now() - 3_600_000))).toBe(1);
      const left = await db().selectFrom('supervisor_outbox').select(['msg_id', 'sent_at']).orderBy('id').execute();
      expect(left.map((row) => [row.msg_id, row.sent_at !== null])).toEqual([
        [`${a}:2:0`, true],
        [`${a}:3:0`, false],
      ]);
    });

    if (target.name === 'postgres') {
      it('while one relay holds rows of a supervisor, another claims none of that supervisor’s rows, only other supervisors’', async () => {
        const [s1, s2] = [randomUUID(), randomUUID()];
        await insertRows(db(), [
          { supervisorId: s1, n: 1 },
          { supervisorId: s1, n: 2 },
          { supervisorId: s1, n: 3 },
          { supervisorId: s2, n: 1 },
          { supervisorId: s2, n: 2 },
        ]);
        await db().transaction().execute(async (first) => {
          const held = await claimOutboxBatch(first, 2);
          expect(held.map((row) => row.msgId)).toEqual([`${s1}:1:0`, `${s1}:2:0`]);
          // A second relay, on its own connection, while the first has not committed.
          const second = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10));
          expect(second.map((row) => row.msgId)).toEqual([`${s2}:1:0`, `${s2}:2:0`]);
          await markOutboxSent(first, held.map((row) => row.id));
        });
        // The first committed: its supervisor's next row is free, and comes after the rows it published.
        const third = await db().transaction().execute((trx) => claimOutboxBatch(trx, 10));
        expect(third.map((row) => row.msgId)).toEqual([`${s1}:3:0`, `${s2}:1:0`, `${s2}:2:0`]);
      });
    }
  });
}
