// A faster parser for timestamptz text on the runtime's own pg pool. pg's default (postgres-date) runs three regular
// expressions per value: a restore-all of 10,000 supervisors parses about ten timestamps each, which was 2 % of its
// Node CPU and 30 MB of garbage. The shape Postgres sends (`YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`, years
// 1000–9999) is read by position; anything else (BC, infinity, years outside that range) goes to pg's own parser.

import pg from 'pg';

const TIMESTAMPTZ_OID = 1184;
const defaultParser = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (value: string) => Date | number | null;

/** Digits from `start` to `end` (exclusive) as a number, or -1 when any of them is not a digit. */
function digits(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i) - 48;
    if (code < 0 || code > 9) return -1;
    value = value * 10 + code;
  }
  return value;
}

/** A timestamptz as Postgres writes it in text, as the same Date pg's default parser gives. */
export function parseTimestamptz(text: string): Date | number | null {
  // YYYY-MM-DD HH:MM:SS, then an optional fraction, then the offset: 22 characters at the least.
  if (text.length < 22 || text.length > 35 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 32 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) {
    return defaultParser(text);
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  if (year < 1000 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return defaultParser(text);
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === 46) {
    const start = at + 1;
    at = start;
    while (at < text.length && text.charCodeAt(at) >= 48 && text.charCodeAt(at) <= 57) at++;
    if (at === start || at - start > 6) return defaultParser(text);
    // Milliseconds truncated, as Date does with the fraction postgres-date hands it.
    ms = digits((text.slice(start, Math.min(at, start + 3)) + '00').slice(0, 3), 0, 3);
  }
  const sign = text.charCodeAt(at);
  if (sign !== 43 && sign !== 45) return defaultParser(text);
  const rest = text.length - at - 1;
  // ±HH, ±HH:MM or ±HH:MM:SS
  if (rest !== 2 && rest !== 5 && rest !== 8) return defaultParser(text);
  const offsetHours = digits(text, at + 1, at + 3);
  const offsetMinutes = rest >= 5 && text.charCodeAt(at + 3) === 58 ? digits(text, at + 4, at + 6) : rest >= 5 ? -1 : 0;
  const offsetSeconds = rest === 8 && text.charCodeAt(at + 6) === 58 ? digits(text, at + 7, at + 9) : rest === 8 ? -1 : 0;
  if (offsetHours < 0 || offsetMinutes < 0 || offsetSeconds < 0) return defaultParser(text);
  const offsetMs = (sign === 45 ? -1 : 1) * ((offsetHours * 60 + offsetMinutes) * 60 + offsetSeconds) * 1000;
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs);
}

/** The type parsers of the runtime's pool: pg's own, with timestamptz read by parseTimestamptz. */
export const runtimeTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === TIMESTAMPTZ_OID && (format ?? 'text') === 'text') return parseTimestamptz;
    return pg.types.getTypeParser(oid, format ?? 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};
