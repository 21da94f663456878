// What Postgres text and jsonb cannot hold: U+0000, and a lone UTF-16 surrogate (JSON's "\ud800" without its pair
// parses into a JavaScript string, but it is not Unicode text).

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export type UnstorableText = 'nul' | 'lone_surrogate';

/** Why this string cannot be stored, or null when it can. */
export function unstorableText(text: string): UnstorableText | null {
  if (text.includes('\u0000')) return 'nul';
  if (LONE_SURROGATE.test(text)) return 'lone_surrogate';
  return null;
}
