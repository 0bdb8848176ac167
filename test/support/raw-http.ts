// HTTP/1.1 over raw sockets for tests that must send (and read) exactly the bytes they mean:
// smuggling shapes, pipelining, half-close. A small strict response parser reads what came back.

import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawResponse {
  status: number;
  reason: string;
  /** Header fields in order, names as sent. */
  headers: [string, string][];
  body: Buffer;
  /** False when the connection ended before the body did. */
  complete: boolean;
}

export function header(response: RawResponse, name: string): string | undefined {
  const lower = name.toLowerCase();
  return response.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export type SendStep =
  | { write: string }
  | { repeat: string; times: number }
  | { wait: number }
  /** Half-close: FIN after what was written; the socket stays open for reading. */
  | { end: true };

export interface RawExchange {
  data: Buffer;
  /** True when the peer closed the connection (FIN or RST) within the wait. */
  closed: boolean;
  reset: boolean;
  /** performance.now() when the first byte arrived (Infinity if none did). */
  firstDataMs: number;
  socket: net.Socket;
}

/**
 * Connects, performs the steps, then collects until `until(data)` holds and the connection stays
 * as it is, the peer closes, or `timeoutMs` passes. The socket is left open when the peer did not
 * close it, for a follow-up on the same connection; the caller destroys it.
 */
export function rawExchange(
  port: number,
  steps: readonly SendStep[],
  options: { until?: (data: Buffer) => boolean; timeoutMs?: number; host?: string } = {},
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closed = false;
    let reset = false;
    let settled = false;
    let firstDataMs = Infinity;
    const socket = net.connect({ port, host: options.host ?? '127.0.0.1', allowHalfOpen: true });
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed, reset, firstDataMs, socket });
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 3_000);
    socket.on('data', (chunk: Buffer) => {
      if (chunks.length === 0) firstDataMs = performance.now();
      chunks.push(chunk);
      if (options.until?.(Buffer.concat(chunks)) === true) setImmediate(finish);
    });
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        reset = true;
        closed = true;
        finish();
      } else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.once('connect', () => {
      void (async () => {
        for (const step of steps) {
          if (socket.destroyed) return;
          if ('write' in step) socket.write(Buffer.from(step.write, 'latin1'));
          else if ('repeat' in step) socket.write(Buffer.from(step.repeat.repeat(step.times), 'latin1'));
          else if ('wait' in step) await new Promise((r) => setTimeout(r, step.wait));
          else socket.end();
        }
      })();
    });
  });
}

/**
 * Parses every response in `data`. `bodiless` says, per response index, whether it answers a
 * HEAD (no body whatever the headers say). Interim 1xx responses are returned too.
 */
export function parseResponses(data: Buffer, bodiless: (index: number) => boolean = () => false): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  let finalIndex = 0;
  while (at < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', at, 'latin1');
    if (headEnd < 0) throw new Error(`incomplete or malformed response head: ${JSON.stringify(data.subarray(at, at + 200).toString('latin1'))}`);
    const lines = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
    if (statusLine === null) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[1]);
    const headers: [string, string][] = lines.slice(1).map((line) => {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`bad header line: ${JSON.stringify(line)}`);
      return [line.slice(0, colon), line.slice(colon + 1).trim()];
    });
    at = headEnd + 4;
    const response: RawResponse = { status, reason: statusLine[2] ?? '', headers, body: Buffer.alloc(0), complete: true };
    out.push(response);
    if (status < 200) continue;
    const noBody = status === 204 || status === 304 || bodiless(finalIndex);
    finalIndex++;
    if (noBody) continue;
    const te = header(response, 'transfer-encoding');
    const cl = header(response, 'content-length');
    if (te !== undefined && te.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at, 'latin1');
        if (lineEnd < 0) {
          response.complete = false;
          at = data.length;
          break;
        }
        const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) throw new Error('bad chunk size');
        at = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n', at, 'latin1');
          if (trailerEnd < 0) response.complete = false;
          at = trailerEnd < 0 ? data.length : trailerEnd + 2;
          break;
        }
        if (at + size + 2 > data.length) {
          parts.push(data.subarray(at));
          response.complete = false;
          at = data.length;
          break;
        }
        parts.push(data.subarray(at, at + size));
        at += size + 2;
      }
      response.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      const length = Number(cl);
      response.body = data.subarray(at, Math.min(data.length, at + length));
      response.complete = at + length <= data.length;
      at = Math.min(data.length, at + length);
    } else {
      // Close-delimited.
      response.body = data.subarray(at);
      at = data.length;
    }
  }
  return out;
}

/** True once `data` holds `count` complete final responses (for `until`). */
export function hasFinalResponses(count: number, bodiless?: (index: number) => boolean): (data: Buffer) => boolean {
  return (data) => {
    try {
      return parseResponses(data, bodiless).filter((r) => r.status >= 200 && r.complete).length >= count;
    } catch {
      return false;
    }
  };
}
