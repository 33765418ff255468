// A TCP relay in front of a test server that a test can cut (every connection dropped, new ones
// refused) and resume on the same port: a service that goes away in the middle of a command.

import net from 'node:net';

/** A relay to radosgw that can be cut (every connection dropped, new ones refused) and resumed. */
export class Relay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Bytes sent toward the service since the last resume. */
  upBytes = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    this.upBytes = 0;
    // noDelay both ways: a relay that holds a response's second write for a delayed ACK adds 40 ms.
    this.server = net.createServer({ noDelay: true }, (client) => {
      const up = net.connect({ ...this.target, noDelay: true });
      this.sockets.add(client).add(up);
      client.on('data', (d: Buffer) => (this.upBytes += d.length));
      client.pipe(up).pipe(client);
      const end = () => {
        client.destroy();
        up.destroy();
        this.sockets.delete(client);
        this.sockets.delete(up);
      };
      client.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server!.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }
}

