// Prints RestorationInfo for people: one block per restored supervisor, and a table for many.

import type { RestorationInfo } from '../domain/restoration.js';

export function formatRestorationInfo(info: RestorationInfo): string {
  const lines = [
    `Supervisor ${info.supervisorId}`,
    `  recovery        ${info.recoveryAction}${info.checkpointSeq !== null ? ` (checkpoint ${info.checkpointSeq})` : ''}, source ${info.source}, ${info.durationMs} ms`,
    `  restored as     ${info.restoredState}, phase ${info.restoredPhase}, restoration #${info.restorationCount}`,
    `  validation      ${info.validation.valid ? 'valid' : `invalid: ${info.validation.errors.join('; ')}`}`,
    `  questions       ${info.questionsRedelivered.length === 0 ? 'none open' : info.questionsRedelivered.map((q) => `${q.question} (delivery ${q.deliveryCount})`).join('; ')}`,
    `  tasks           ${info.tasksReconciled.length === 0 ? 'none running' : info.tasksReconciled.map((t) => `${t.taskId.slice(0, 8)} ${t.action}`).join(', ')}`,
  ];
  if (info.warnings.length > 0) lines.push(`  warnings        ${info.warnings.join('; ')}`);
  lines.push('  context message:', ...info.contextMessage.split('\n').map((line) => `    ${line}`));
  return `${lines.join('\n')}\n`;
}

export function formatRestorationTable(infos: RestorationInfo[], names: ReadonlyMap<string, string> = new Map()): string {
  const rows = infos.map((info) => [
    names.get(info.supervisorId) ?? info.supervisorId.slice(0, 8),
    info.recoveryAction,
    info.restoredState,
    info.restoredPhase,
    String(info.restorationCount),
    String(info.questionsRedelivered.length),
    String(info.tasksResumed.length),
    String(info.tasksReconciled.filter((task) => task.action !== 'resumed').length),
    `${Math.round(info.durationMs)} ms`,
  ]);
  const header = ['supervisor', 'recovery', 'state', 'phase', 'restored #', 'questions re-delivered', 'tasks resumed', 'tasks reconciled', 'took'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n') + '\n';
}
