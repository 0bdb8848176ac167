// A destination that records what reaches it twice over: every request its own HTTP parser saw
// (method, path, body) and the raw bytes of every connection, so a test can tell one request
// from two smuggled into one.

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

export interface RecordingDestination {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Raw bytes received, per upstream connection, in arrival order. */
  connections: Buffer[][];
  /** Requests the destination's parser refused (a smuggled fragment that is not HTTP). */
  parseErrors: string[];
  reset(): void;
  close(): Promise<void>;
}

export const DESTINATION_BODY = '{"resourceType":"Patient","id":"p1"}';

export async function startRecordingDestination(): Promise<RecordingDestination> {
  const requests: RecordedRequest[] = [];
  const connections: Buffer[][] = [];
  const parseErrors: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(DESTINATION_BODY) });
      res.end(DESTINATION_BODY);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    const bytes: Buffer[] = [];
    connections.push(bytes);
    socket.on('data', (chunk: Buffer) => bytes.push(chunk));
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    parseErrors.push(err.code ?? String(err));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections,
    parseErrors,
    reset() {
      requests.length = 0;
      parseErrors.length = 0;
      connections.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
