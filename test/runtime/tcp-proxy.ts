// A TCP proxy in front of the real Postgres that a test can cut and restore: a network outage without touching the server.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** The target's URL with host and port replaced by the proxy's. */
  url: string;
  /**
   * Drop every open connection and refuse new ones until restore(). Resolves once the pool had time to notice, because
   * pg emits 'error' with no listener (an uncaught exception) on a client checked out of the pool when its socket closes.
   */
  cut(): Promise<void>;
  restore(): void;
  /** Hold every byte in both directions (a frozen server or a stalled network): connections stay open, nothing answers. */
  stall(): void;
  /** Deliver what was held, in order, and forward again. */
  unstall(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let refusing = false;
  let stalled = false;
  const held: Array<() => void> = [];
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: target.hostname, port: Number(target.port || 5432) });
    track(upstream);
    // Bytes are forwarded by hand so a stall can hold them (the connections stay open, nothing gets through).
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (stalled) held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    async cut() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
    },
    restore() {
      refusing = false;
    },
    stall() {
      stalled = true;
    },
    unstall() {
      stalled = false;
      for (const write of held.splice(0)) write();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
