// The runtime's pool reads timestamptz text by position instead of pg's three regular expressions per value. It must
// give the very Date pg's own parser gives, for every shape Postgres writes: offsets of whole hours, of minutes (India,
// Newfoundland) and of seconds (local mean time before 1900), fractions of 1 to 6 digits, and what it hands back to pg's
// parser (BC, infinity, years outside 1000–9999).

import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseTimestamptz } from '../../src/persistence/timestamp-parser.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

const pgParser = pg.types.getTypeParser(1184, 'text') as (value: string) => Date | number | null;

const asComparable = (value: Date | number | null) => (value instanceof Date ? value.getTime() : value);

describe('parseTimestamptz', () => {
  it('agrees with pg\'s parser on the shapes Postgres writes and on the ones it leaves to pg', () => {
    const texts = [
      '2026-12-03 08:59:22+00',
      '2026-12-03 08:59:22.1+00',
      '2026-12-03 08:59:22.12+00',
      '2026-12-03 08:59:22.123+00',
      '2026-12-03 08:59:22.1239+00',
      '2026-12-03 08:59:22.123999+00',
      '2026-12-31 23:59:59.999999-12',
      '2026-01-01 00:00:00+14',
      '2026-06-15 12:00:00.5+05:30',
      '2026-06-15 12:00:00-03:30',
      '1899-12-31 23:59:59+00:19:32',
      '1850-01-01 00:00:00.25-04:56:02',
      '2024-02-29 12:34:56.000001+01',
      '1000-01-01 00:00:00+00',
      '9999-12-31 23:59:59.999999+00',
      '0099-06-01 00:00:00+00',
      '0044-03-15 12:00:00+00 BC',
      '12026-01-01 00:00:00+00',
      'infinity',
      '-infinity',
    ];
    for (const text of texts) {
      expect(asComparable(parseTimestamptz(text)), text).toEqual(asComparable(pgParser(text)));
    }
  });

  it('agrees with pg\'s parser on 20,000 random timestamps, fractions and offsets', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    for (let i = 0; i < 20_000; i++) {
      const at = new Date(Date.UTC(1000, 0, 1) + random() * (Date.UTC(9999, 11, 31) - Date.UTC(1000, 0, 1)));
      const date = `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1, 2)}-${pad(at.getUTCDate(), 2)} ${pad(at.getUTCHours(), 2)}:${pad(at.getUTCMinutes(), 2)}:${pad(at.getUTCSeconds(), 2)}`;
      const digits = Math.floor(random() * 7);
      const fraction = digits === 0 ? '' : `.${pad(Math.floor(random() * 10 ** digits), digits)}`;
      const hours = Math.floor(random() * 15);
      const kind = Math.floor(random() * 3);
      const offset = `${random() < 0.5 ? '-' : '+'}${pad(hours, 2)}${kind >= 1 ? `:${pad(Math.floor(random() * 60), 2)}` : ''}${kind === 2 ? `:${pad(Math.floor(random() * 60), 2)}` : ''}`;
      const text = `${date}${fraction}${offset}`;
      expect(asComparable(parseTimestamptz(text)), text).toEqual(asComparable(pgParser(text)));
    }
  });
});

for (const target of (await databaseTargets()).filter((candidate) => candidate.name === 'postgres')) {
  describe(`timestamptz read through the runtime's pool on ${target.name}`, () => {
    const database = useIsolatedDatabase(target, { migrate: false });

    it('is the instant Postgres stored, whatever the session time zone writes as its offset', async () => {
      const db = database().db;
      for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Europe/Amsterdam', 'Pacific/Kiritimati', 'America/New_York']) {
        const rows = await db.connection().execute(async (connection) => {
          await sql`SELECT set_config('TimeZone', ${zone}, false)`.execute(connection);
          const result = await sql<{ at: Date; text: string; epoch_ms: string }>`
            SELECT at, at::text AS text, (extract(epoch FROM at) * 1000)::numeric(20, 3)::text AS epoch_ms
            FROM (VALUES (timestamptz '1850-03-01 12:00:00.123456 UTC'), (timestamptz '1899-12-31 23:00:00 UTC'),
                         (now()), (timestamptz '2026-03-29 01:30:00.5 UTC'), (timestamptz '9999-12-31 23:59:59.999 UTC')) AS v(at)`.execute(connection);
          await sql`RESET TimeZone`.execute(connection);
          return result.rows;
        });
        for (const row of rows) {
          expect(row.at, `${zone}: ${row.text}`).toBeInstanceOf(Date);
          expect(row.at.getTime(), `${zone}: ${row.text}`).toBe(Math.floor(Number(row.epoch_ms)));
          expect(row.at.getTime(), `${zone}: ${row.text}`).toBe(asComparable(pgParser(row.text)));
        }
      }
    });
  });
}
