// The daemon's one-line check that its inspector URL answers: a closed port and a bad URL are reported, a listening
// server is not.

import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { probeInspector } from '../../src/runtime/inspection.js';

describe('probeInspector', () => {
  it('reports a port nobody listens on and a URL that is not one; a listening server passes', async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      expect(await probeInspector(`ws://127.0.0.1:${port}`)).toBeNull();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    // The port was just freed: nothing listens there now.
    expect(await probeInspector(`ws://127.0.0.1:${port}`)).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
    expect(await probeInspector('not a url')).toBe('not a url is not a URL');
  });
});
