// Named crash points: the one seam the crash-point sweep (test/faults/crash-points.test.ts) needs in production code.
// SUPERVISOR_RUNTIME_CRASH_POINT=<name>[:<n>], read once when the daemon starts, makes the process SIGKILL itself the
// n-th time (default 1) it passes that point. Each point is a window between two durable facts that a real crash can
// fall into; unarmed, passing a point is one comparison.

import { writeSync } from 'node:fs';
import { SupervisorRuntimeError } from '../domain/errors.js';

/** Every crash point, with the window it opens. */
export const CRASH_POINTS = {
  'save.before-statement': 'a group of full save points is about to be sent: nothing of it is written, no caller is answered',
  'save.after-commit': "a group's save statement committed: no caller is answered, nothing is made visible or published",
  'outbox.after-publish': "a step's or a batch's outbox rows were published to the transport: they are not marked sent",
  'inbox.after-record': 'an inbound answer or task event was recorded in the inbox: the message is not acked',
  'inbox.after-apply': "the owner applied an inbox row (its save point committed): the row is not stamped",
  'claim.after-commit': 'a claim (a takeover or start-up batch, or a resume) committed a new epoch: nothing is restored',
  'restore.after-restored': "a restore's RESTORED save point committed: its re-delivered questions are not published",
} as const;

export type CrashPointName = keyof typeof CRASH_POINTS;

export const CRASH_POINT_NAMES = Object.keys(CRASH_POINTS) as CrashPointName[];

export interface CrashPointSpec {
  name: CrashPointName;
  /** Crash at this pass (1 = the first). */
  pass: number;
}

/** SUPERVISOR_RUNTIME_CRASH_POINT names no crash point, or its count is not a positive integer. */
export class UnknownCrashPointError extends SupervisorRuntimeError {
  override readonly name = 'UnknownCrashPointError';
  constructor(
    readonly value: string,
    /** What is wrong with it: the form, the name, or the count. */
    problem = `is not <name> or <name>:<n> (n a whole number from 1)`,
  ) {
    super(`Invalid setting SUPERVISOR_RUNTIME_CRASH_POINT: "${value}" ${problem}; the crash points are ${CRASH_POINT_NAMES.join(', ')}`);
  }
}

function isCrashPointName(name: string): name is CrashPointName {
  return Object.hasOwn(CRASH_POINTS, name);
}

/** `<name>[:<n>]`, or undefined when the value is unset or empty. */
export function parseCrashPoint(value: string | undefined): CrashPointSpec | undefined {
  const text = value?.trim() ?? '';
  if (text === '') return undefined;
  const match = /^([a-z.-]+)(?::(\d{1,9}))?$/.exec(text);
  const name = match?.[1] ?? '';
  const pass = match?.[2] === undefined ? 1 : Number(match[2]);
  if (!match) throw new UnknownCrashPointError(text);
  if (!isCrashPointName(name)) throw new UnknownCrashPointError(text, `names no crash point ("${name}")`);
  if (pass < 1) throw new UnknownCrashPointError(text, `counts from 1 (got ${pass})`);
  return { name, pass };
}

let armed: (CrashPointSpec & { passed: number }) | null = null;

/** Arm one crash point for this process (the daemon does it once at start); undefined disarms. */
export function armCrashPoint(spec: CrashPointSpec | undefined): void {
  armed = spec ? { ...spec, passed: 0 } : null;
}

/**
 * Pass the named point: the armed one's n-th pass kills this process with SIGKILL, at once, running nothing else. Its
 * last log line carries `detail` (what the window held: the outbox rows just published), so a test can tell which.
 */
export function crashPoint(name: CrashPointName, detail?: Readonly<Record<string, unknown>>): void {
  if (armed === null || armed.name !== name) return;
  armed.passed += 1;
  if (armed.passed < armed.pass) return;
  // Written synchronously, so the line is in the log of a process that runs nothing after it.
  try {
    writeSync(2, `${JSON.stringify({ level: 50, time: Date.now(), pid: process.pid, crashPoint: name, pass: armed.passed, ...detail, msg: `crash point ${name} reached (pass ${armed.passed}): SIGKILL` })}\n`);
  } catch {
    // No stderr: crash all the same.
  }
  process.kill(process.pid, 'SIGKILL');
}
