// One-off HTTP requests from the runner: readiness polls and conformance probes, never load.
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ProbeResponse {
  readonly status: number;
  readonly body: Buffer;
}

export function probe(port: number, path: string, headers: Readonly<Record<string, string>> = {}, timeoutMs = 2_000): Promise<ProbeResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `path` answers 200; resolves with the time from `sinceMs` (a Date.now()). */
export async function waitFor200(port: number, path: string, headers: Readonly<Record<string, string>>, sinceMs: number, timeoutMs: number, what: string): Promise<number> {
  for (;;) {
    try {
      if ((await probe(port, path, headers, 1_000)).status === 200) return Date.now() - sinceMs;
    } catch {
      // Not listening yet.
    }
    if (Date.now() - sinceMs > timeoutMs) throw new Error(`${what} did not answer 200 on 127.0.0.1:${port}${path} within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A port free right now on loopback, for programs that cannot report the one they chose. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
