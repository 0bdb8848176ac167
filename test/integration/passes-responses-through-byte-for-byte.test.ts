// The destination's answer reaches the originator unchanged: status and reason phrase, every
// end-to-end header in order with its casing and duplicates, and the body's exact bytes (gzip,
// binary, large chunked), compared with the same request sent straight to the destination.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues, startUpstream, type TestUpstream } from '../support/upstream.ts';

const DATE = 'Tue, 03 Mar 2026 10:00:00 GMT';
const patientJson = Buffer.from(
  JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { versionId: '3' }, name: [{ family: 'Smith', given: ['Ann'] }] }),
);
const gzipped = zlib.gzipSync(Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: Array(200).fill({ fullUrl: 'x' }) })));
const everyByte = Buffer.from(Array.from({ length: 256 * 64 }, (_v, i) => i % 256));
const large = randomBytes(8 * 1024 * 1024 + 17);

let upstream: TestUpstream;
let proxy: ProxyFixture;

/** Answers are written from raw header lists, so casing, order and duplicates are exactly these. */
function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.sendDate = false;
  const path = (req.url ?? '').replace(/^\/fhir/, '');
  switch (path) {
    case '/Patient':
      res.writeHead(201, 'Created Just Now', [
        'Date', DATE,
        'Location', `${upstream.url}/fhir/Patient/p1/_history/3`,
        'Content-Location', `${upstream.url}/fhir/Patient/p1/_history/3`,
        'ETag', 'W/"3"',
        'Last-Modified', 'Mon, 02 Mar 2026 09:59:58 GMT',
        'Content-Type', 'application/fhir+json; charset=utf-8',
        'Content-Length', String(patientJson.length),
      ]);
      res.end(patientJson);
      return;
    case '/Patient/secret':
      res.writeHead(401, 'Unauthorized', [
        'Date', DATE,
        'WWW-Authenticate', 'Bearer realm="acme", error="invalid_token", error_description="The access token expired"',
        'WWW-Authenticate', 'Basic realm="acme"',
        'Content-Length', '0',
      ]);
      res.end();
      return;
    case '/cookies':
      res.writeHead(200, [
        'Date', DATE,
        'Set-Cookie', 'session=abc123; Path=/; HttpOnly; Secure',
        'X-FhIr-Trace', 'first',
        'Set-Cookie', 'pref=dark; Expires=Wed, 09 Jun 2027 10:18:14 GMT; Path=/',
        'x-fhir-TRACE', 'second',
        'Set-Cookie', 'lb=node-7',
        'X-Empty', '',
        'Content-Length', '2',
      ]);
      res.end('ok');
      return;
    case '/Bundle/gz':
      res.writeHead(200, [
        'Date', DATE,
        'Content-Type', 'application/fhir+json',
        'Content-Encoding', 'gzip',
        'Vary', 'Accept-Encoding',
        'Content-Length', String(gzipped.length),
      ]);
      res.end(gzipped);
      return;
    case '/Binary/b1':
      res.writeHead(200, ['Date', DATE, 'Content-Type', 'application/octet-stream', 'Content-Length', String(everyByte.length)]);
      res.end(everyByte);
      return;
    case '/Patient/p1/no-content':
      res.writeHead(204, ['Date', DATE, 'ETag', 'W/"4"']);
      res.end();
      return;
    case '/Patient/p1':
      if (req.headers['if-none-match'] === 'W/"3"') {
        res.writeHead(304, 'Not Modified', ['Date', DATE, 'ETag', 'W/"3"', 'Cache-Control', 'no-cache']);
        res.end();
        return;
      }
      res.writeHead(200, ['Date', DATE, 'Content-Type', 'application/fhir+json', 'ETag', 'W/"3"', 'Content-Length', String(patientJson.length)]);
      // For HEAD, node:http sends the headers only, and Content-Length still says what GET would send.
      res.end(patientJson);
      return;
    case '/Binary/large': {
      res.writeHead(200, ['Date', DATE, 'Content-Type', 'application/octet-stream']);
      // Uneven writes, no Content-Length: chunked all the way.
      let at = 0;
      const step = (): void => {
        while (at < large.length) {
          const size = 1 + ((at * 7919) % 200_000);
          const chunk = large.subarray(at, at + size);
          at += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', step);
            return;
          }
        }
        res.end();
      };
      step();
      return;
    }
    default:
      res.writeHead(404, ['Date', DATE, 'Content-Length', '0']);
      res.end();
  }
}

beforeAll(async () => {
  upstream = await startUpstream(answer);
  proxy = await startProxyFixture(routeYaml('acme', `destination: acme\naddressing: { pathSegment: true }\nbackend: { url: ${upstream.url}/fhir }`));
});

afterAll(async () => {
  await proxy.stop();
  await upstream.close();
});

interface Reply {
  status: number;
  statusMessage: string;
  rawHeaders: string[];
  body: Buffer;
}

/** node:http, not fetch: fetch would decompress gzip and hide the bytes we compare. */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, agent?: http.Agent): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const FRAMING = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/** The end-to-end header list: framing is per hop and may differ. */
function endToEnd(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (!FRAMING.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sends the request straight to the destination and through the proxy; both must be the same. */
async function throughProxyAndDirect(method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const direct = await send(upstream.url, method, `/fhir${path}`, headers);
  const proxied = await send(proxy.url, method, `/acme${path}`, headers);
  expect(proxied.status).toBe(direct.status);
  expect(proxied.statusMessage).toBe(direct.statusMessage);
  expect(endToEnd(proxied.rawHeaders)).toEqual(endToEnd(direct.rawHeaders));
  expect(proxied.body.length).toBe(direct.body.length);
  expect(sha256(proxied.body)).toBe(sha256(direct.body));
  return proxied;
}

describe('responses pass through unchanged', () => {
  it('keeps status, reason phrase, Location, Content-Location, ETag and Last-Modified of a create', async () => {
    const reply = await throughProxyAndDirect('POST', '/Patient');
    expect(reply.status).toBe(201);
    expect(reply.statusMessage).toBe('Created Just Now');
    expect(rawHeaderValues(reply.rawHeaders, 'location')).toEqual([`${upstream.url}/fhir/Patient/p1/_history/3`]);
    expect(rawHeaderValues(reply.rawHeaders, 'content-location')).toEqual([`${upstream.url}/fhir/Patient/p1/_history/3`]);
    expect(rawHeaderValues(reply.rawHeaders, 'etag')).toEqual(['W/"3"']);
    expect(rawHeaderValues(reply.rawHeaders, 'last-modified')).toEqual(['Mon, 02 Mar 2026 09:59:58 GMT']);
    expect(reply.body.equals(patientJson)).toBe(true);
  });

  it('keeps every WWW-Authenticate challenge of a 401', async () => {
    const reply = await throughProxyAndDirect('GET', '/Patient/secret');
    expect(reply.status).toBe(401);
    expect(rawHeaderValues(reply.rawHeaders, 'www-authenticate')).toEqual([
      'Bearer realm="acme", error="invalid_token", error_description="The access token expired"',
      'Basic realm="acme"',
    ]);
  });

  it('keeps several Set-Cookie and duplicate custom headers separate, in order, with their casing', async () => {
    const reply = await throughProxyAndDirect('GET', '/cookies');
    expect(endToEnd(reply.rawHeaders)).toEqual([
      'Date', DATE,
      'Set-Cookie', 'session=abc123; Path=/; HttpOnly; Secure',
      'X-FhIr-Trace', 'first',
      'Set-Cookie', 'pref=dark; Expires=Wed, 09 Jun 2027 10:18:14 GMT; Path=/',
      'x-fhir-TRACE', 'second',
      'Set-Cookie', 'lb=node-7',
      'X-Empty', '',
      'Content-Length', '2',
    ]);
    expect(reply.body.toString()).toBe('ok');
  });

  it('passes a gzip body compressed, with its Content-Encoding and Content-Length', async () => {
    const reply = await throughProxyAndDirect('GET', '/Bundle/gz', { 'Accept-Encoding': 'gzip' });
    expect(rawHeaderValues(reply.rawHeaders, 'content-encoding')).toEqual(['gzip']);
    expect(rawHeaderValues(reply.rawHeaders, 'content-length')).toEqual([String(gzipped.length)]);
    expect(sha256(reply.body)).toBe(sha256(gzipped));
    expect(zlib.gunzipSync(reply.body).toString()).toContain('"searchset"');
  });

  it('passes a binary body with every byte value intact', async () => {
    const reply = await throughProxyAndDirect('GET', '/Binary/b1');
    expect(sha256(reply.body)).toBe(sha256(everyByte));
  });

  it('passes a 204 with no body', async () => {
    const reply = await throughProxyAndDirect('DELETE', '/Patient/p1/no-content');
    expect(reply.status).toBe(204);
    expect(reply.body.length).toBe(0);
    expect(rawHeaderValues(reply.rawHeaders, 'etag')).toEqual(['W/"4"']);
    expect(rawHeaderValues(reply.rawHeaders, 'content-length')).toEqual([]);
    expect(rawHeaderValues(reply.rawHeaders, 'transfer-encoding')).toEqual([]);
  });

  it('passes a 304 with no body to a conditional read', async () => {
    const reply = await throughProxyAndDirect('GET', '/Patient/p1', { 'If-None-Match': 'W/"3"' });
    expect(reply.status).toBe(304);
    expect(reply.statusMessage).toBe('Not Modified');
    expect(reply.body.length).toBe(0);
    expect(rawHeaderValues(reply.rawHeaders, 'transfer-encoding')).toEqual([]);
  });

  it('answers HEAD with the GET headers and no body, and the connection stays usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const head = await send(proxy.url, 'HEAD', '/acme/Patient/p1', {}, agent);
      expect(head.status).toBe(200);
      expect(rawHeaderValues(head.rawHeaders, 'content-length')).toEqual([String(patientJson.length)]);
      expect(head.body.length).toBe(0);
      // Had the proxy sent a body after the HEAD answer, this GET would read it as its response.
      const get = await send(proxy.url, 'GET', '/acme/Patient/p1', {}, agent);
      expect(get.status).toBe(200);
      expect(get.body.equals(patientJson)).toBe(true);
      await throughProxyAndDirect('HEAD', '/Patient/p1');
    } finally {
      agent.destroy();
    }
  });

  it('streams a large chunked body (8 MiB) with identical bytes', async () => {
    const reply = await throughProxyAndDirect('GET', '/Binary/large');
    expect(rawHeaderValues(reply.rawHeaders, 'content-length')).toEqual([]);
    expect(rawHeaderValues(reply.rawHeaders, 'transfer-encoding')).toEqual(['chunked']);
    expect(reply.body.length).toBe(large.length);
    expect(sha256(reply.body)).toBe(sha256(large));
  });

  it('adds no header of its own to a destination answer', async () => {
    const reply = await send(proxy.url, 'GET', '/acme/Patient/p1');
    const names = endToEnd(reply.rawHeaders).filter((_v, i) => i % 2 === 0);
    expect(names).toEqual(['Date', 'Content-Type', 'ETag', 'Content-Length']);
  });
});
