// Property: for any request an originator may send (any method, framing-relevant headers in any
// spelling, Connection naming them, bodies that look like requests), what the proxy puts on the
// wire parses as exactly one request at the destination, with the method, path and body sent.
// The head comes from requestFraming + upstreamRequestHeaders and is serialised, and the body
// framed piece by piece, with engine/wire-format.ts exactly as engine/exchange.ts writes them;
// the bytes are given to Node's own HTTP server parser followed by a sentinel request: everything
// before the sentinel is what those bytes parse as.

import fc from 'fast-check';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkPrefix, CRLF, LAST_CHUNK, requestHead } from '../../../proxy/src/engine/wire-format.ts';
import { upstreamRequestHeaders } from '../../../proxy/src/forward/headers.ts';
import { type BodyFraming, requestFraming } from '../../../proxy/src/server/request-framing.ts';

const SENTINEL = 'GET /__sentinel HTTP/1.1\r\nHost: sentinel\r\n\r\n';
const SMUGGLED = ['GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 'POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n'];

interface Parsed {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

/** Node's HTTP server parser over raw bytes: the requests before the sentinel, or the parse error. */
class ParseServer {
  readonly server = http.createServer({ maxHeaderSize: 64 * 1024 });
  readonly #waiting = new Map<number, { requests: Promise<Parsed>[]; done: (result: Parsed[] | string) => void }>();

  constructor() {
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const state = this.#waiting.get(req.socket.remotePort ?? 0);
      const body = new Promise<Parsed>((resolve) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          resolve({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
          res.writeHead(204).end();
        });
      });
      if (state === undefined) return;
      if (req.url === '/__sentinel') void Promise.all(state.requests).then((requests) => state.done(requests));
      else state.requests.push(body);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      this.#waiting.get(socket.remotePort ?? 0)?.done(`parse error ${err.code ?? String(err)}`);
      socket.destroy();
    });
  }

  parse(bytes: Buffer): Promise<Parsed[] | string> {
    const { port } = this.server.address() as net.AddressInfo;
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      // A framing that swallows the sentinel leaves the parser waiting: that too is a failure.
      const deadline = setTimeout(() => finish('the sentinel never parsed: the bytes did not end where their framing said'), 5_000);
      const finish = (result: Parsed[] | string): void => {
        clearTimeout(deadline);
        this.#waiting.delete(socket.localPort ?? 0);
        socket.destroy();
        resolve(result);
      };
      socket.on('connect', () => {
        this.#waiting.set(socket.localPort ?? 0, { requests: [], done: finish });
        socket.write(Buffer.concat([bytes, Buffer.from(SENTINEL, 'latin1')]));
      });
    });
  }
}

let parser: ParseServer;

beforeAll(async () => {
  parser = new ParseServer();
  await new Promise<void>((r) => parser.server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  parser.server.closeAllConnections();
  await new Promise((r) => parser.server.close(r));
});

/** The bytes the exchange writes for one request: the head, then each piece of body as its framing says. */
function wireBytes(method: string, path: string, headers: string[], body: Buffer[], framing: BodyFraming): Buffer {
  const parts: Buffer[] = [Buffer.from(requestHead(method, path, headers) + CRLF, 'latin1')];
  for (const piece of body) {
    if (framing.kind === 'chunked') parts.push(Buffer.from(chunkPrefix(piece.length), 'latin1'), piece, Buffer.from(CRLF, 'latin1'));
    else parts.push(piece);
  }
  if (framing.kind === 'chunked') parts.push(Buffer.from(LAST_CHUNK, 'latin1'));
  return Buffer.concat(parts);
}

const bodyArb = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.constantFrom(...SMUGGLED).map((s) => Buffer.from(s, 'latin1')),
  fc.constantFrom(...SMUGGLED).map((s) => Buffer.from(`{"resourceType":"Patient"}${s}`, 'latin1')),
);
const framingChoice = fc.constantFrom('none', 'length', 'chunked');
const spelled = (name: string): fc.Arbitrary<string> => fc.constantFrom(name, name.toLowerCase(), name.toUpperCase());
/** Fields around the framing an originator (or an attacker) adds: Connection naming framing fields, TE, Upgrade. */
const noiseArb = fc.array(
  fc.oneof(
    fc.tuple(spelled('Connection'), fc.constantFrom('Content-Length', 'Transfer-Encoding', 'close, Transfer-Encoding', 'keep-alive', 'Upgrade, TE', 'Content-Length, Host')),
    fc.tuple(fc.constant('TE'), fc.constant('trailers')),
    fc.tuple(fc.constant('Upgrade'), fc.constant('h2c')),
    fc.tuple(fc.constant('Keep-Alive'), fc.constant('timeout=5')),
    fc.tuple(fc.constant('Trailer'), fc.constant('X-Checksum')),
    fc.tuple(fc.constant('Accept'), fc.constant('application/fhir+json')),
    fc.tuple(fc.constant('Via'), fc.constant('1.1 earlier')),
    fc.tuple(fc.constant('X-Destination'), fc.constant('acme')),
  ),
  { maxLength: 5 },
);

describe('what the forwarder writes upstream', () => {
  it('parses as exactly one request with the method, path and body sent, for any originator request', async () => {
    let withBodies = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'DELETE', 'OPTIONS', 'POST', 'PUT', 'PATCH'),
        fc.constantFrom('/fhir/Patient', '/fhir/Patient/1?_format=json', '/'),
        framingChoice,
        bodyArb,
        noiseArb,
        fc.shuffledSubarray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { minLength: 1, maxLength: 10 }),
        fc.boolean(),
        async (method, path, choice, bodyBytes, noise, cuts, upperFraming) => {
          const body = choice === 'none' ? Buffer.alloc(0) : bodyBytes;
          const framingField: [string, string][] =
            choice === 'length' ? [[upperFraming ? 'CONTENT-LENGTH' : 'Content-Length', String(body.length)]] : choice === 'chunked' ? [[upperFraming ? 'transfer-encoding' : 'Transfer-Encoding', 'chunked']] : [];
          const raw = [['Host', 'gw.example'], ...noise, ...framingField].flat();
          // The proxy's own framing decision, as engine-server.ts makes it.
          const framing = requestFraming('1.1', raw);
          const headers = upstreamRequestHeaders(raw, {
            intermediaryId: 'gw-test',
            upstreamHost: 'fhir.internal',
            nextHopDestination: undefined,
            clientAddress: '127.0.0.1',
            originalHost: 'gw.example',
            protocol: 'http',
            httpVersion: '1.1',
            framing,
          });
          const withBody = framing.kind === 'chunked' || (framing.kind === 'length' && framing.length > 0);
          if (withBody) withBodies++;
          // The body arrives in pieces, cut where the generator says.
          const at = [...new Set(cuts.map((c) => Math.floor((c / 10) * body.length)))].sort((a, b) => a - b);
          const pieces = [...at, body.length].map((end, i) => body.subarray(i === 0 ? 0 : (at[i - 1] as number), end)).filter((p) => p.length > 0);
          const bytes = wireBytes(method, path, headers, withBody ? pieces : [], framing);
          const parsed = await parser.parse(bytes);
          expect(parsed, bytes.toString('latin1')).not.toBeTypeOf('string');
          const requests = parsed as Parsed[];
          expect(requests.map((r) => [r.method, r.url])).toEqual([[method, path]]);
          expect((requests[0] as Parsed).body.equals(body)).toBe(true);
          // Every field the proxy chose went out, in order.
          const got = (requests[0] as Parsed).rawHeaders;
          let from = 0;
          for (let i = 0; i < headers.length; i += 2) {
            const found = got.findIndex((v, j) => j >= from && j % 2 === 0 && v === headers[i] && got[j + 1] === headers[i + 1]);
            expect(found, `${headers[i]}: ${headers[i + 1]}`).toBeGreaterThanOrEqual(0);
            from = found + 2;
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(withBodies).toBeGreaterThan(100);
  });
});
