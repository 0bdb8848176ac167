// What the next hop receives: hop-by-hop headers (and any named in Connection) removed, every
// end-to-end header (Authorization, Prefer, conditionals, content negotiation) unchanged and in
// order, earlier Forwarded/Via kept with ours appended, and X-Destination set for the next hop.

import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { okHandler, rawHeaderValues, startUpstream, type ReceivedRequest, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let proxy: ProxyFixture;
let proxyHost: string;

beforeAll(async () => {
  upstream = await startUpstream();
  proxy = await startProxyFixture(
    routeYaml('acme', `destination: acme\naddressing: { header: true, pathSegment: true }\nbackend: { url: ${upstream.url}/fhir }`) +
      // The backend here is another intermediary, which routes on the id it knows the destination by.
      routeYaml(
        'east',
        `destination: east\naddressing: { header: true }\nbackend: { url: ${upstream.url}/gw, nextHopDestination: acme-east }`,
      ),
  );
  proxyHost = new URL(proxy.url).host;
});

afterAll(async () => {
  await proxy.stop();
  await upstream.close();
});

interface Reply {
  status: number;
  rawHeaders: string[];
  body: Buffer;
}

/** Raw header list in, raw header list out: node:http sends exactly these (Host included). */
function send(method: string, path: string, headers: string[], body?: Buffer): Promise<Reply> {
  const url = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function lastReceived(): ReceivedRequest {
  const seen = upstream.received.at(-1);
  if (seen === undefined) throw new Error('the upstream received nothing');
  return seen;
}

const END_TO_END = [
  'Authorization', 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln',
  'Prefer', 'return=representation',
  'If-Match', 'W/"3"',
  'If-None-Exist', 'identifier=http://acme.org/mrn|12345',
  'If-Modified-Since', 'Mon, 02 Mar 2026 09:59:58 GMT',
  'Accept', 'application/fhir+json; fhirVersion=4.0',
  'Content-Type', 'application/fhir+json; charset=utf-8',
  'X-Request-ID', 'req-42',
  'x-CUSTOM-casing', 'kept',
];

describe('headers sent upstream', () => {
  it('removes hop-by-hop headers and the ones Connection names, and keeps the rest unchanged in order', async () => {
    const body = Buffer.from('{"resourceType":"Patient","id":"p1"}');
    const reply = await send(
      'PUT',
      '/acme/Patient/p1',
      [
        'Host', proxyHost,
        'Connection', 'keep-alive, X-Hop-Secret, x-other-HOP',
        END_TO_END[0] as string, END_TO_END[1] as string,
        'Keep-Alive', 'timeout=5, max=100',
        'X-Hop-Secret', 'only-for-the-first-hop',
        'TE', 'trailers',
        ...END_TO_END.slice(2, 10),
        'Upgrade', 'h2c',
        'Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0',
        'Proxy-Connection', 'keep-alive',
        'X-Other-Hop', 'also-hop-by-hop',
        ...END_TO_END.slice(10),
        'Content-Length', String(body.length),
      ],
      body,
    );
    expect(reply.status).toBe(200);
    const seen = lastReceived();
    expect(seen.method).toBe('PUT');
    expect(seen.url).toBe('/fhir/Patient/p1');
    expect(seen.body.equals(body)).toBe(true);
    // The upstream connection's own `Connection: keep-alive`, if the engine sends one, is this hop's.
    const withoutOwnConnection = seen.rawHeaders.slice(-2).join(': ') === 'Connection: keep-alive' ? seen.rawHeaders.slice(0, -2) : seen.rawHeaders;
    expect(withoutOwnConnection).toEqual([
      ...END_TO_END,
      'Host', `127.0.0.1:${upstream.port}`,
      // Framing is per hop: this hop's own Content-Length, from the length the body arrived with.
      'Content-Length', String(body.length),
      'Forwarded', `by=_gw-test;for=127.0.0.1;host="${proxyHost}";proto=http`,
      'Via', '1.1 gw-test',
    ]);
  });

  it('answers a request asking to Upgrade as a plain request and does not pass the Upgrade on', async () => {
    const url = new URL(proxy.url);
    const raw = await new Promise<string>((resolve, reject) => {
      // Not half-closed: node:http drops a request whose client has sent FIN (httpAllowHalfOpen).
      const socket = net.connect(Number(url.port), url.hostname, () => {
        socket.write(`GET /acme/Patient/p1 HTTP/1.1\r\nHost: ${proxyHost}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        const length = /\r\ncontent-length: (\d+)\r\n/i.exec(data)?.[1];
        const bodyAt = data.indexOf('\r\n\r\n');
        if (length !== undefined && bodyAt >= 0 && data.length - bodyAt - 4 >= Number(length)) {
          socket.destroy();
          resolve(data);
        }
      });
      socket.on('error', reject);
    });
    expect(raw.slice(0, 17), raw).toBe('HTTP/1.1 200 OK\r\n');
    const seen = lastReceived().rawHeaders;
    expect(rawHeaderValues(seen, 'upgrade')).toEqual([]);
    // Only this hop's own connection header (if any), never the originator's `Upgrade` token.
    expect(rawHeaderValues(seen, 'connection').filter((v) => v !== 'keep-alive')).toEqual([]);
  });

  it('passes Authorization with the exact bytes sent, even when repeated across requests', async () => {
    for (const token of ['Bearer a.b.c', 'Bearer  two-spaces', 'DPoP eyJ0eXAiOiJkcG9wK2p3dCJ9']) {
      await send('GET', '/acme/Patient/p1', ['Host', proxyHost, 'Authorization', token]);
      expect(rawHeaderValues(lastReceived().rawHeaders, 'authorization')).toEqual([token]);
    }
  });

  it('keeps an earlier hop Forwarded and Via and appends ours after them', async () => {
    await send('GET', '/acme/Patient/p1', [
      'Host', proxyHost,
      'Forwarded', 'for=192.0.2.60;proto=https;by=203.0.113.43',
      'Via', '1.1 edge-gw (fhirmesh)',
      'Forwarded', 'for="[2001:db8:cafe::17]:4711"',
      'Via', 'HTTP/1.1 partner-gw',
    ]);
    const seen = lastReceived().rawHeaders;
    expect(rawHeaderValues(seen, 'forwarded')).toEqual([
      `for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711", by=_gw-test;for=127.0.0.1;host="${proxyHost}";proto=http`,
    ]);
    expect(rawHeaderValues(seen, 'via')).toEqual(['1.1 edge-gw (fhirmesh), HTTP/1.1 partner-gw, 1.1 gw-test']);
  });

  it('names the IPv4 client in Forwarded for= without brackets or quotes', async () => {
    await send('GET', '/acme/metadata', ['Host', proxyHost]);
    const [forwarded] = rawHeaderValues(lastReceived().rawHeaders, 'forwarded');
    expect(forwarded?.split(';')).toContain('for=127.0.0.1');
  });

  it('replaces X-Destination by the route backend.nextHopDestination', async () => {
    await send('GET', '/Patient/p1', ['Host', proxyHost, 'X-Destination', 'east']);
    const seen = lastReceived();
    expect(seen.url).toBe('/gw/Patient/p1');
    expect(rawHeaderValues(seen.rawHeaders, 'x-destination')).toEqual(['acme-east']);
  });

  it('removes X-Destination when the backend is the destination itself', async () => {
    await send('GET', '/Patient/p1', ['Host', proxyHost, 'X-Destination', 'acme']);
    const seen = lastReceived();
    expect(seen.url).toBe('/fhir/Patient/p1');
    expect(rawHeaderValues(seen.rawHeaders, 'x-destination')).toEqual([]);
  });
});

describe('headers sent back', () => {
  it('removes the destination hop-by-hop headers from its answer and keeps the others', async () => {
    upstream.setHandler((_req, res) => {
      res.writeHead(200, [
        'Connection', 'keep-alive, X-Backend-Hop',
        'X-Backend-Hop', 'private',
        'Keep-Alive', 'timeout=4',
        'Proxy-Authenticate', 'Basic realm="backend"',
        'ETag', 'W/"9"',
        'Content-Length', '2',
      ]);
      res.end('{}');
    });
    try {
      const reply = await send('GET', '/acme/Patient/p9', ['Host', proxyHost]);
      expect(reply.status).toBe(200);
      expect(rawHeaderValues(reply.rawHeaders, 'x-backend-hop')).toEqual([]);
      expect(rawHeaderValues(reply.rawHeaders, 'proxy-authenticate')).toEqual([]);
      expect(rawHeaderValues(reply.rawHeaders, 'etag')).toEqual(['W/"9"']);
      // This hop's own keep-alive framing, not the backend's `timeout=4`.
      expect(rawHeaderValues(reply.rawHeaders, 'keep-alive')).not.toContain('timeout=4');
      expect(reply.body.toString()).toBe('{}');
    } finally {
      upstream.setHandler(okHandler);
    }
  });
});
