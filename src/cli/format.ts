// Plain-text tables and fields for the terminal: no colours, so output pipes cleanly into grep and files.

/** Cut a value to `width` characters, marking the cut. */
export function truncate(value: string, width: number): string {
  const flat = value.replace(/\s+/g, ' ');
  return flat.length <= width ? flat : `${flat.slice(0, Math.max(0, width - 1))}…`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** `Label   value` lines with the labels aligned; null and undefined values are left out. */
export function fields(entries: Array<[string, string | null | undefined]>): string {
  const shown = entries.filter((entry): entry is [string, string] => entry[1] !== null && entry[1] !== undefined);
  const width = Math.max(...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n') + '\n';
}
