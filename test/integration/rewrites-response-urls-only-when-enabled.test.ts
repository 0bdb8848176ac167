// Rewriting the backend's base URL to the route's publicBaseUrl is opt-in (outside the final IG):
// off, every byte passes; on, Location/Content-Location and uncompressed JSON bodies are rewritten,
// even when a URL arrives split across writes, and gzip bodies and look-alike URLs are left alone.

import { createHash } from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues, startUpstream, type TestUpstream } from '../support/upstream.ts';

const PUBLIC = 'https://gw.example.org/acme';

let upstream: TestUpstream;
let proxy: ProxyFixture;
/** The backend's base as the proxy knows it: the text that gets replaced. */
let base: string;

function bundle(baseUrl: string): string {
  return JSON.stringify({
    resourceType: 'Bundle',
    type: 'searchset',
    link: [{ relation: 'self', url: `${baseUrl}/Patient?name=smith` }],
    entry: [
      { fullUrl: `${baseUrl}/Patient/p1`, resource: { resourceType: 'Patient', id: 'p1' } },
      { fullUrl: `${baseUrl}/Patient/p2`, resource: { resourceType: 'Patient', id: 'p2', link: [{ other: { reference: `${baseUrl}/Patient/p1` } }] } },
    ],
  });
}

function gzippedBundle(): Buffer {
  return zlib.gzipSync(bundle(base));
}

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const path = url.pathname.replace(/^\/r4/, '');
    if (path === '/Patient' && req.method === 'POST') {
      const body = JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: `${base}/Patient/p1` } });
      res.writeHead(201, {
        Location: `${base}/Patient/p1/_history/1`,
        'Content-Location': `${base}/Patient/p1/_history/1`,
        'Content-Type': 'application/fhir+json',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    } else if (path === '/$export') {
      res.writeHead(202, { 'Content-Location': `${base}/$export-poll-status?job=42`, 'Content-Length': '0' });
      res.end();
    } else if (path === '/Patient' && url.searchParams.has('split')) {
      // The same bundle in two writes, cut at `split`, with a pause so they arrive as two chunks.
      const body = Buffer.from(bundle(base));
      const at = Number(url.searchParams.get('split'));
      res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
      res.write(body.subarray(0, at));
      setTimeout(() => res.end(body.subarray(at)), 30);
    } else if (path === '/Patient') {
      const body = bundle(base);
      res.writeHead(200, { 'Content-Type': 'application/fhir+json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else if (path === '/Patient/gz') {
      const body = gzippedBundle();
      res.writeHead(200, {
        'Content-Type': 'application/fhir+json',
        'Content-Encoding': 'gzip',
        'Content-Location': `${base}/Patient/gz`,
        'Content-Length': body.length,
      });
      res.end(body);
    } else if (path === '/Patient/lookalike') {
      // URLs that begin with the backend's base text but name another path or host.
      const body = JSON.stringify({
        resourceType: 'Bundle',
        entry: [{ fullUrl: `${base}b/Patient/1` }, { fullUrl: `${base}-draft/Patient/2` }, { fullUrl: `${base}/Patient/3` }, { fullUrl: base }],
      });
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', Location: `${base}b/Patient/1`, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.writeHead(404, { 'Content-Length': '0' });
      res.end();
    }
  });
  base = `${upstream.url}/r4`;
  proxy = await startProxyFixture(
    // Same backend twice: publicBaseUrl alone changes nothing; only rewriteResponseUrls turns it on.
    routeYaml('plain', `destination: plain\naddressing: { pathSegment: true }\npublicBaseUrl: https://gw.example.org/plain\nbackend: { url: ${base} }`) +
      routeYaml(
        'acme',
        `destination: acme\naddressing: { pathSegment: true }\npublicBaseUrl: ${PUBLIC}\nrewriteResponseUrls: true\nbackend: { url: ${base} }`,
      ),
  );
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

/** node:http, so a gzip body arrives as the compressed bytes the destination sent. */
function send(method: string, path: string, body?: string): Promise<Reply> {
  const url = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('off by default', () => {
  it('leaves Location, Content-Location and the body untouched when rewriteResponseUrls is not set', async () => {
    const created = await send('POST', '/plain/Patient', '{"resourceType":"Patient"}');
    expect(created.status).toBe(201);
    expect(rawHeaderValues(created.rawHeaders, 'location')).toEqual([`${base}/Patient/p1/_history/1`]);
    expect(rawHeaderValues(created.rawHeaders, 'content-location')).toEqual([`${base}/Patient/p1/_history/1`]);
    expect(created.body.toString()).toBe(JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: `${base}/Patient/p1` } }));

    const searched = await send('GET', '/plain/Patient?name=smith');
    const expected = Buffer.from(bundle(base));
    expect(sha256(searched.body)).toBe(sha256(expected));
    expect(rawHeaderValues(searched.rawHeaders, 'content-length')).toEqual([String(expected.length)]);
  });
});

describe('rewriteResponseUrls: true', () => {
  it('rewrites Location and Content-Location of a create, and URLs in its JSON body', async () => {
    const created = await send('POST', '/acme/Patient', '{"resourceType":"Patient"}');
    expect(created.status).toBe(201);
    expect(rawHeaderValues(created.rawHeaders, 'location')).toEqual([`${PUBLIC}/Patient/p1/_history/1`]);
    expect(rawHeaderValues(created.rawHeaders, 'content-location')).toEqual([`${PUBLIC}/Patient/p1/_history/1`]);
    expect(created.body.toString()).toBe(JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: `${PUBLIC}/Patient/p1` } }));
  });

  it('rewrites the Content-Location of an async kick-off (202)', async () => {
    const kickoff = await send('GET', '/acme/$export');
    expect(kickoff.status).toBe(202);
    expect(rawHeaderValues(kickoff.rawHeaders, 'content-location')).toEqual([`${PUBLIC}/$export-poll-status?job=42`]);
  });

  it('rewrites every fullUrl, link and reference in a search Bundle and sends the new length chunked', async () => {
    const searched = await send('GET', '/acme/Patient?name=smith');
    expect(searched.status).toBe(200);
    expect(searched.body.toString()).toBe(bundle(PUBLIC));
    expect(rawHeaderValues(searched.rawHeaders, 'content-length')).toEqual([]);
    expect(rawHeaderValues(searched.rawHeaders, 'transfer-encoding')).toEqual(['chunked']);
    expect(rawHeaderValues(searched.rawHeaders, 'content-type')).toEqual(['application/fhir+json; charset=utf-8']);
  });

  it('rewrites a URL that arrives split across two writes, wherever the cut falls', async () => {
    const text = bundle(base);
    const first = text.indexOf(base);
    // Every cut from just before the first URL to just after it, the boundary byte included.
    const cuts = Array.from({ length: base.length + 3 }, (_v, i) => first - 1 + i);
    const replies = await Promise.all(cuts.map((at) => send('GET', `/acme/Patient?split=${at}`)));
    for (const [i, reply] of replies.entries()) {
      expect(reply.status, `cut at ${cuts[i]}`).toBe(200);
      expect(reply.body.toString(), `cut at ${cuts[i]}`).toBe(bundle(PUBLIC));
    }
  });

  it('leaves a gzip body byte for byte (and its Content-Length) but still rewrites its headers', async () => {
    const reply = await send('GET', '/acme/Patient/gz');
    const expected = gzippedBundle();
    expect(reply.status).toBe(200);
    expect(sha256(reply.body)).toBe(sha256(expected));
    expect(rawHeaderValues(reply.rawHeaders, 'content-encoding')).toEqual(['gzip']);
    expect(rawHeaderValues(reply.rawHeaders, 'content-length')).toEqual([String(expected.length)]);
    expect(rawHeaderValues(reply.rawHeaders, 'content-location')).toEqual([`${PUBLIC}/Patient/gz`]);
  });

  it('rewrites only whole base URLs, not URLs that merely start with the same text', async () => {
    const reply = await send('GET', '/acme/Patient/lookalike');
    expect(reply.status).toBe(200);
    expect(rawHeaderValues(reply.rawHeaders, 'location')).toEqual([`${base}b/Patient/1`]);
    expect(JSON.parse(reply.body.toString())).toEqual({
      resourceType: 'Bundle',
      entry: [{ fullUrl: `${base}b/Patient/1` }, { fullUrl: `${base}-draft/Patient/2` }, { fullUrl: `${PUBLIC}/Patient/3` }, { fullUrl: PUBLIC }],
    });
  });
});
