// The rule for suites that need a real server: run when it is reachable; otherwise skip with the one line that
// enables them, except with CI=true, where a missing server fails the run (never a silent skip).

import { connect } from 'node:net';
import { describe, it } from 'vitest';

export interface ServerGate {
  run: boolean;
}

/** Call at collection time (top level of a test file, or inside describe). */
export function serverGate(name: string, reachable: boolean, enableLine: string): ServerGate {
  if (reachable) return { run: true };
  if (process.env.CI === 'true') {
    describe(`${name} (required: CI=true)`, () => {
      it(`${name} is reachable`, () => {
        throw new Error(`${name} is not reachable and CI=true requires it: ${enableLine}`);
      });
    });
    return { run: false };
  }
  process.stderr.write(`[skip] ${name} suites: ${enableLine}\n`);
  describe(`${name} suites`, () => {
    it.skip(`skipped: ${enableLine}`, () => undefined);
  });
  return { run: false };
}

/** True when something accepts TCP connections at host:port within the timeout. */
export function tcpReachable(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
