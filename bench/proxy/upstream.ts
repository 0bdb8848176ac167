// Child process: the FHIR server behind every contender, on the load generator's core. It must
// cost next to nothing, or it (not the proxy) sets the saturation figure: a `net` server with a
// minimal HTTP/1.1 reader that answers each search with one pre-built buffer. It also sinks
// uploads and streams downloads for the 1 GiB probes, and counts connections, so a contender
// that does not keep its upstream connections alive shows it. Run by bench/proxy/run.ts.
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { DOWNLOAD_PATH, searchBundle, UPLOAD_PATH } from './internal/fixtures.ts';
import type { UpstreamCounters, UpstreamMessage, UpstreamRequest } from './internal/upstream-protocol.ts';

const HEADER_END = Buffer.from('\r\n\r\n');
const DOWNLOAD_CHUNK = Buffer.alloc(256 * 1024, 'x');

const body = searchBundle();
const searchResponse = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\n' +
      'Content-Type: application/fhir+json; charset=utf-8\r\n' +
      `Content-Length: ${body.length}\r\n` +
      'ETag: W/"3"\r\n' +
      'Last-Modified: Wed, 15 Jan 2025 10:21:07 GMT\r\n' +
      'Cache-Control: no-store\r\n\r\n',
    'latin1',
  ),
  body,
]);
const notFound = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1');
const badRequest = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1');

const counters: { -readonly [K in keyof UpstreamCounters]: UpstreamCounters[K] } = { connections: 0, requests: 0, uploadedBytes: 0, downloadedBytes: 0 };

interface Head {
  readonly method: string;
  readonly target: string;
  readonly contentLength: number;
  readonly chunked: boolean;
  readonly close: boolean;
}

function parseHead(text: string): Head | null {
  const lines = text.split('\r\n');
  const [method, target, version] = (lines[0] ?? '').split(' ');
  if (method === undefined || target === undefined || version === undefined || !version.startsWith('HTTP/1.')) return null;
  let contentLength = 0;
  let chunked = false;
  let close = version === 'HTTP/1.0';
  for (let i = 1; i < lines.length; i += 1) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    if (name === 'content-length') contentLength = Number(line.slice(colon + 1).trim());
    else if (name === 'transfer-encoding') chunked = line.slice(colon + 1).toLowerCase().includes('chunked');
    else if (name === 'connection') close = line.slice(colon + 1).toLowerCase().includes('close');
  }
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) return null;
  return { method, target, contentLength, chunked, close };
}

/** Counts a request body as it arrives: by Content-Length, or chunk by chunk. */
class BodyReader {
  #remaining: number;
  readonly #chunked: boolean;
  #chunkRemaining = 0;
  #state: 'size' | 'data' | 'data-crlf' | 'trailers' | 'done';
  bytes = 0;

  constructor(head: Head) {
    this.#chunked = head.chunked;
    this.#remaining = head.contentLength;
    this.#state = head.chunked ? 'size' : head.contentLength === 0 ? 'done' : 'data';
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /** Consumes what belongs to the body; returns the offset where the next request starts, or -1 on bad framing. */
  consume(buffer: Buffer, offset: number): number {
    let at = offset;
    while (at < buffer.length && this.#state !== 'done') {
      if (!this.#chunked) {
        const take = Math.min(this.#remaining, buffer.length - at);
        this.bytes += take;
        this.#remaining -= take;
        at += take;
        if (this.#remaining === 0) this.#state = 'done';
        continue;
      }
      if (this.#state === 'data') {
        const take = Math.min(this.#chunkRemaining, buffer.length - at);
        this.bytes += take;
        this.#chunkRemaining -= take;
        at += take;
        if (this.#chunkRemaining === 0) this.#state = 'data-crlf';
        continue;
      }
      const lineEnd = buffer.indexOf('\r\n', at, 'latin1');
      if (lineEnd === -1) return at; // a partial line: wait for more
      const line = buffer.toString('latin1', at, lineEnd);
      at = lineEnd + 2;
      if (this.#state === 'data-crlf') {
        if (line !== '') return -1;
        this.#state = 'size';
      } else if (this.#state === 'size') {
        const size = Number.parseInt(line.split(';', 1)[0] ?? '', 16);
        if (!Number.isSafeInteger(size) || size < 0) return -1;
        this.#chunkRemaining = size;
        this.#state = size === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        this.#state = 'done';
      }
    }
    return at;
  }
}

class Connection {
  readonly #socket: Socket;
  #pending: Buffer | null = null;
  #head: Head | null = null;
  #body: BodyReader | null = null;
  #streaming = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => socket.destroy());
  }

  #onData(chunk: Buffer): void {
    this.#pending = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#drainRequests();
  }

  #drainRequests(): void {
    while (this.#pending !== null && !this.#streaming) {
      const buffer = this.#pending;
      let offset = 0;
      if (this.#head === null) {
        const end = buffer.indexOf(HEADER_END);
        if (end === -1) {
          if (buffer.length > 64 * 1024) this.#fail();
          return;
        }
        const head = parseHead(buffer.toString('latin1', 0, end));
        if (head === null) return this.#fail();
        this.#head = head;
        this.#body = new BodyReader(head);
        offset = end + HEADER_END.length;
      }
      const bodyReader = this.#body as BodyReader;
      offset = bodyReader.consume(buffer, offset);
      if (offset === -1) return this.#fail();
      this.#pending = offset < buffer.length ? buffer.subarray(offset) : null;
      if (!bodyReader.done) {
        // Keep only an unfinished chunk-size line; counted body bytes are dropped.
        return;
      }
      const head = this.#head;
      this.#head = null;
      this.#body = null;
      this.#respond(head, bodyReader.bytes);
    }
  }

  #respond(head: Head, receivedBytes: number): void {
    counters.requests += 1;
    const socket = this.#socket;
    if (head.method === 'GET' && head.target.startsWith('/Patient')) {
      socket.write(searchResponse);
    } else if (head.method === 'POST' && head.target === UPLOAD_PATH) {
      counters.uploadedBytes += receivedBytes;
      const answer = Buffer.from(JSON.stringify({ receivedBytes }));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${answer.length}\r\n\r\n${answer.toString('latin1')}`, 'latin1');
    } else if (head.method === 'GET' && head.target.startsWith(`${DOWNLOAD_PATH}?bytes=`)) {
      this.#download(Number(head.target.slice(DOWNLOAD_PATH.length + '?bytes='.length)), head.close);
      return;
    } else {
      socket.write(notFound);
    }
    if (head.close) socket.end();
  }

  /** Writes `bytes` with backpressure; requests behind it on this connection wait. */
  #download(bytes: number, close: boolean): void {
    const socket = this.#socket;
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      socket.end(badRequest);
      return;
    }
    this.#streaming = true;
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n\r\n`, 'latin1');
    let left = bytes;
    const writeMore = (): void => {
      while (left > 0) {
        const chunk = left >= DOWNLOAD_CHUNK.length ? DOWNLOAD_CHUNK : DOWNLOAD_CHUNK.subarray(0, left);
        left -= chunk.length;
        counters.downloadedBytes += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', writeMore);
          return;
        }
      }
      this.#streaming = false;
      if (close) socket.end();
      else this.#drainRequests();
    };
    writeMore();
  }

  #fail(): void {
    this.#pending = null;
    this.#socket.end(badRequest);
  }
}

function send(message: UpstreamMessage): void {
  if (process.send === undefined) throw new Error('bench/proxy/upstream.ts is a child of bench/proxy/run.ts; run that instead');
  process.send(message);
}

const server = createServer({ noDelay: true }, (socket) => {
  counters.connections += 1;
  new Connection(socket);
});
// The parent going away ends this process, so no upstream outlives a run.
process.once('disconnect', () => process.exit(0));
process.on('message', (message: UpstreamRequest) => {
  if (message.type === 'counters') send({ type: 'counters', requestId: message.requestId, counters: { ...counters } });
});
server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }));
