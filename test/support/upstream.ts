// A programmable upstream for proxy tests: real node:http on 127.0.0.1:0, records what arrived,
// and lets a test answer however it needs (odd headers, gzip, resets, silence).

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

export interface TestUpstream {
  url: string;
  port: number;
  received: ReceivedRequest[];
  setHandler(handler: UpstreamHandler): void;
  close(): Promise<void>;
}

/** Answers 200 with a small FHIR JSON body echoing nothing: the default for routing tests. */
export const okHandler: UpstreamHandler = (_req, res) => {
  const body = JSON.stringify({ resourceType: 'Patient', id: 'p1' });
  res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};

/**
 * `bufferBodies: false` hands the handler the live stream (for large uploads) instead of a buffer.
 */
export async function startUpstream(handler: UpstreamHandler = okHandler, options: { bufferBodies?: boolean } = {}): Promise<TestUpstream> {
  let current = handler;
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    if (options.bufferBodies === false) {
      received.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body: Buffer.alloc(0) });
      current(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body });
      current(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    setHandler(h) {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Header values by lower-cased name, every occurrence, from a raw header list. */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === name) out.push(rawHeaders[i + 1] as string);
  }
  return out;
}
