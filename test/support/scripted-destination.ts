// A destination that answers with exactly the bytes a test scripts (malformed, unsolicited 101,
// bodies after 204, resets, silence), chosen by the request path, on raw sockets it controls.

import net from 'node:net';

export type ScriptStep = { write: string } | { repeat: string; times: number } | { wait: number } | { close: true } | { reset: true };

export interface ScriptedDestination {
  url: string;
  port: number;
  /** Script for requests whose path ends with `/<name>`. */
  script(name: string, steps: readonly ScriptStep[]): void;
  /** Request heads received, raw, in order. */
  heads: string[];
  openSockets(): number;
  close(): Promise<void>;
}

export const FOLLOW_UP_BODY = 'follow-up-ok';

/** Answers `/follow` (and anything unscripted) with a plain 200 whose body says so. */
const FOLLOW_UP: ScriptStep[] = [{ write: `HTTP/1.1 200 OK\r\nContent-Length: ${FOLLOW_UP_BODY.length}\r\n\r\n${FOLLOW_UP_BODY}` }];

export async function startScriptedDestination(): Promise<ScriptedDestination> {
  const scripts = new Map<string, readonly ScriptStep[]>();
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let busy = false;
    const pump = (): void => {
      if (busy) return;
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buffered.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
      let end = headEnd + 4 + length;
      if (chunked) {
        const last = buffered.indexOf('\r\n0\r\n\r\n', headEnd + 2);
        if (last < 0) return;
        end = last + 7;
      }
      if (buffered.length < end) return;
      buffered = buffered.subarray(end);
      heads.push(head);
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '';
      const name = path.split('?')[0]?.split('/').pop() ?? '';
      busy = true;
      void run(socket, scripts.get(name) ?? FOLLOW_UP).then(() => {
        busy = false;
        pump();
      });
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    script(name, steps) {
      scripts.set(name, steps);
    },
    heads,
    openSockets: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function run(socket: net.Socket, steps: readonly ScriptStep[]): Promise<void> {
  for (const step of steps) {
    if (socket.destroyed) return;
    if ('write' in step) socket.write(Buffer.from(step.write, 'latin1'));
    else if ('repeat' in step) socket.write(Buffer.from(step.repeat.repeat(step.times), 'latin1'));
    else if ('wait' in step) await new Promise((r) => setTimeout(r, step.wait));
    else if ('close' in step) {
      socket.end();
      return;
    } else {
      socket.resetAndDestroy();
      return;
    }
  }
}
