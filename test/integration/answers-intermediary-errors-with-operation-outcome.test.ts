// Every error the proxy raises itself gets the IG's status and an OperationOutcome (JSON, or XML
// when Accept or _format asks) naming this intermediary, its FHIRMESH_* code and Fhirmesh-Error;
// errors the destination sends are passed through byte for byte with no trace of the proxy.

import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { freePort } from '../support/spawn-controller.ts';
import { rawHeaderValues, startUpstream, type TestUpstream } from '../support/upstream.ts';

const INTERMEDIARY = 'gw-east-1';
const CODE_SYSTEM = 'https://fhirmesh.io/CodeSystem/proxy-error';

const destinationOutcome = Buffer.from(
  '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Patient/gone is not known"}]}',
);
const destinationHtml = Buffer.from('<!DOCTYPE html>\n<html><body><h1>500 Internal Server Error</h1>\r\n</body></html>\n');

let ok: TestUpstream;
let resetting: TestUpstream;
let silent: TestUpstream;
let failing: TestUpstream;
let garbage: net.Server;
let garbagePort: number;
let closedPort: number;
let proxy: ProxyFixture;
let unready: ProxyFixture;

beforeAll(async () => {
  ok = await startUpstream();
  resetting = await startUpstream((req) => req.socket.destroy());
  // Reads the request and never answers.
  silent = await startUpstream(() => undefined);
  failing = await startUpstream((req, res) => {
    if (req.url?.endsWith('/Patient/gone')) {
      res.writeHead(404, { 'Content-Type': 'application/fhir+json', 'Content-Length': destinationOutcome.length });
      res.end(destinationOutcome);
    } else {
      res.writeHead(500, 'Server Exploded', { 'Content-Type': 'text/html', 'Content-Length': destinationHtml.length });
      res.end(destinationHtml);
    }
  });
  garbage = net.createServer((socket) => {
    socket.once('data', () => socket.end('this is not HTTP at all\r\n\r\n'));
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  garbagePort = (garbage.address() as net.AddressInfo).port;
  closedPort = await freePort();

  proxy = await startProxyFixture(
    routeYaml(
      'acme',
      `
destination: acme
addressing: { header: true, pathSegment: true }
backend: { url: ${ok.url}/fhir }
allow: { methods: [GET, POST], maxRequestBodyBytes: 1024 }`,
    ) +
      routeYaml('other', `destination: other\naddressing: { header: true, pathSegment: true }\nbackend: { url: ${ok.url}/other }`) +
      routeYaml('refused', `destination: refused\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }`) +
      routeYaml('reset', `destination: reset\naddressing: { header: true }\nbackend: { url: ${resetting.url}/fhir }`) +
      routeYaml('garbage', `destination: garbage\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${garbagePort}/fhir }`) +
      routeYaml(
        'slow',
        `destination: slow\naddressing: { header: true }\nbackend: { url: ${silent.url}/fhir }\ntimeouts: { firstByte: 300ms }`,
      ) +
      routeYaml('failing', `destination: failing\naddressing: { header: true }\nbackend: { url: ${failing.url}/fhir }`),
    { intermediaryId: INTERMEDIARY },
  );
  // A routes file that does not validate: the proxy starts, but with no table.
  unready = await startProxyFixture(
    routeYaml('broken', `destination: Not_A_Valid_Id\naddressing: { header: true }\nbackend: { url: ${ok.url}/fhir }`),
    { intermediaryId: INTERMEDIARY, allowUnready: true },
  );
});

afterAll(async () => {
  await proxy.stop();
  await unready.stop();
  await Promise.all([ok.close(), resetting.close(), silent.close(), failing.close()]);
  await new Promise<void>((resolve) => garbage.close(() => resolve()));
});

interface Reply {
  status: number;
  statusMessage: string;
  rawHeaders: string[];
  body: Buffer;
}

interface Call {
  method?: string;
  path: string;
  /** Flat [name, value, ...] so a header can be sent twice. */
  headers?: string[];
  /** One buffer is sent with its Content-Length; several are sent chunked, one write each. */
  body?: Buffer | Buffer[];
  target?: () => ProxyFixture;
}

function send(call: Call): Promise<Reply> {
  const url = new URL((call.target ?? (() => proxy))().url);
  // A raw header list makes node:http send exactly these headers, so Host is ours to add.
  const headers = ['Host', url.host, ...(call.headers ?? [])];
  if (Buffer.isBuffer(call.body)) headers.push('Content-Length', String(call.body.length));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: call.method ?? 'GET', path: call.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (Array.isArray(call.body)) for (const chunk of call.body) req.write(chunk);
    else if (call.body !== undefined) req.write(call.body);
    req.end();
  });
}

function header(reply: Reply, name: string): string[] {
  return rawHeaderValues(reply.rawHeaders, name);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

interface ParsedOutcome {
  issueCode: string;
  coding: { system: string; code: string };
  text: string;
  diagnostics: string;
}

function parseJsonOutcome(body: Buffer): ParsedOutcome {
  const outcome = JSON.parse(body.toString('utf8'));
  expect(outcome.resourceType).toBe('OperationOutcome');
  expect(outcome.issue).toHaveLength(1);
  const [issue] = outcome.issue;
  expect(issue.severity).toBe('error');
  expect(issue.details.coding).toHaveLength(1);
  return { issueCode: issue.code, coding: issue.details.coding[0], text: issue.details.text, diagnostics: issue.diagnostics };
}

const XML_OUTCOME = new RegExp(
  '^<\\?xml version="1\\.0" encoding="UTF-8"\\?>' +
    '<OperationOutcome xmlns="http://hl7\\.org/fhir"><issue>' +
    '<severity value="error"/><code value="([a-z-]+)"/>' +
    '<details><coding><system value="([^"]+)"/><code value="([A-Z_]+)"/></coding><text value="([^"]*)"/></details>' +
    '<diagnostics value="([^"]*)"/>' +
    '</issue></OperationOutcome>$',
);

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos);/g, (_m, name: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[name] ?? '');
}

function parseXmlOutcome(body: Buffer): ParsedOutcome {
  const m = XML_OUTCOME.exec(body.toString('utf8'));
  expect(m, body.toString('utf8')).not.toBeNull();
  const [, issueCode = '', system = '', code = '', text = '', diagnostics = ''] = m ?? [];
  return { issueCode, coding: { system, code }, text: unescapeXml(text), diagnostics: unescapeXml(diagnostics) };
}

type Format = 'json' | 'json-default' | 'xml-accept' | 'xml-format';
const FORMATS: Format[] = ['json', 'json-default', 'xml-accept', 'xml-format'];

function inFormat(call: Call, format: Format): Call {
  if (format === 'xml-accept') return { ...call, headers: [...(call.headers ?? []), 'Accept', 'application/fhir+xml'] };
  if (format === 'xml-format') return { ...call, path: call.path + (call.path.includes('?') ? '&' : '?') + '_format=xml' };
  if (format === 'json-default') return call;
  return { ...call, headers: [...(call.headers ?? []), 'Accept', 'application/fhir+json'] };
}

/** The whole contract of an intermediary error; returns the outcome's human text for further checks. */
function expectIntermediaryError(reply: Reply, format: Format, status: number, code: string, issueCode: string): string {
  expect(reply.status).toBe(status);
  expect(header(reply, 'fhirmesh-error')).toEqual([code]);
  expect(header(reply, 'fhirmesh-intermediary')).toEqual([INTERMEDIARY]);
  expect(header(reply, 'content-length')).toEqual([String(reply.body.length)]);
  const xml = format.startsWith('xml');
  expect(header(reply, 'content-type')).toEqual([xml ? 'application/fhir+xml; charset=utf-8' : 'application/fhir+json; charset=utf-8']);
  const outcome = xml ? parseXmlOutcome(reply.body) : parseJsonOutcome(reply.body);
  expect(outcome.issueCode).toBe(issueCode);
  expect(outcome.coding).toEqual({ system: CODE_SYSTEM, code });
  expect(outcome.text).not.toBe('');
  expect(outcome.diagnostics).toBe(`fhirmesh intermediary '${INTERMEDIARY}': ${outcome.text}`);
  return outcome.text;
}

interface Case {
  name: string;
  call: Call;
  status: number;
  code: string;
  issueCode: string;
  /** Part of the message that says what was wrong. */
  says: string;
  extra?: (reply: Reply) => void;
}

const bigChunk = Buffer.alloc(400, 0x61);

const CASES: Case[] = [
  {
    name: 'malformed X-Destination (characters a destination id cannot have)',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'Acme!<script>'] },
    status: 400,
    code: 'FHIRMESH_METADATA_MALFORMED',
    issueCode: 'invalid',
    says: 'X-Destination must be a destination id',
  },
  {
    name: 'X-Destination and path segment naming two destinations',
    call: { path: '/other/Patient/p1', headers: ['X-Destination', 'acme'] },
    status: 400,
    code: 'FHIRMESH_METADATA_CONFLICT',
    issueCode: 'invalid',
    says: 'names two destinations (acme by header, other by path)',
  },
  {
    name: 'two different X-Destination values',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'acme', 'X-Destination', 'other'] },
    status: 400,
    code: 'FHIRMESH_METADATA_CONFLICT',
    issueCode: 'invalid',
    says: 'X-Destination names 2 different destinations',
  },
  {
    name: 'an unknown destination',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'nobody-here'] },
    status: 404,
    code: 'FHIRMESH_DESTINATION_UNKNOWN',
    issueCode: 'not-found',
    says: "destination 'nobody-here' given in X-Destination is not known",
  },
  {
    name: 'no routing metadata at all',
    call: { path: '/Patient/p1' },
    status: 404,
    code: 'FHIRMESH_DESTINATION_UNKNOWN',
    issueCode: 'not-found',
    says: 'no destination could be resolved',
  },
  {
    name: 'a method the route does not allow',
    call: { method: 'DELETE', path: '/acme/Patient/p1' },
    status: 405,
    code: 'FHIRMESH_METHOD_NOT_ALLOWED',
    issueCode: 'not-supported',
    says: 'DELETE is not allowed for destination acme',
    extra: (reply) => expect(header(reply, 'allow')).toEqual(['GET, POST']),
  },
  {
    name: 'a declared Content-Length over the limit',
    call: { method: 'POST', path: '/acme/Patient', headers: ['Content-Type', 'application/fhir+json'], body: Buffer.alloc(1025, 0x20) },
    status: 413,
    code: 'FHIRMESH_BODY_TOO_LARGE',
    issueCode: 'too-long',
    says: 'larger than destination acme allows (1024 bytes)',
  },
  {
    name: 'a chunked body that grows over the limit',
    call: { method: 'POST', path: '/acme/Patient', headers: ['Content-Type', 'application/fhir+json'], body: [bigChunk, bigChunk, bigChunk, bigChunk] },
    status: 413,
    code: 'FHIRMESH_BODY_TOO_LARGE',
    issueCode: 'too-long',
    // Counted as it streams (no length was declared), so cut by the limiter, not refused up front.
    says: 'larger than this route allows (1024 bytes)',
  },
  {
    name: 'the next hop refusing the connection',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'refused'] },
    status: 502,
    code: 'FHIRMESH_UPSTREAM_REFUSED',
    issueCode: 'transient',
    says: 'refused the connection',
  },
  {
    name: 'the next hop resetting before it answers',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'reset'] },
    status: 502,
    code: 'FHIRMESH_UPSTREAM_RESET',
    issueCode: 'transient',
    says: 'closed the connection before answering',
  },
  {
    name: 'the next hop answering with something that is not HTTP',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'garbage'] },
    status: 502,
    code: 'FHIRMESH_UPSTREAM_BAD_RESPONSE',
    issueCode: 'transient',
    says: 'malformed HTTP response',
  },
  {
    name: 'no first byte within the firstByte timeout',
    call: { path: '/Patient/p1', headers: ['X-Destination', 'slow'] },
    status: 504,
    code: 'FHIRMESH_UPSTREAM_TIMEOUT',
    issueCode: 'timeout',
    says: 'no response within 300 ms',
  },
  {
    name: 'our own Via already on the request (a loop)',
    call: { path: '/acme/Patient/p1', headers: ['Via', `1.1 gw-west, 1.1 ${INTERMEDIARY}`] },
    status: 508,
    code: 'FHIRMESH_LOOP_DETECTED',
    issueCode: 'processing',
    says: `already passed through '${INTERMEDIARY}'`,
  },
  {
    name: 'no route table loaded yet',
    call: { path: '/acme/Patient/p1', target: () => unready },
    status: 503,
    code: 'FHIRMESH_NOT_READY',
    issueCode: 'transient',
    says: 'no route table yet',
  },
];

describe('intermediary errors', () => {
  for (const c of CASES) {
    for (const format of FORMATS) {
      it(`answers ${c.status} ${c.code} for ${c.name} (${format})`, async () => {
        const reply = await send(inFormat(c.call, format));
        const text = expectIntermediaryError(reply, format, c.status, c.code, c.issueCode);
        expect(text).toContain(c.says);
        c.extra?.(reply);
      });
    }
  }

  it('answers 504 only after the firstByte timeout, not at once and not after the default 30 s', async () => {
    const started = performance.now();
    const reply = await send({ path: '/Patient/p1', headers: ['X-Destination', 'slow'] });
    const elapsed = performance.now() - started;
    expect(reply.status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('never lets a body over the limit reach the destination', async () => {
    const before = ok.received.length;
    const declared = await send({ method: 'POST', path: '/acme/Patient', body: Buffer.alloc(2048, 0x20) });
    const chunked = await send({ method: 'POST', path: '/acme/Patient', body: [bigChunk, bigChunk, bigChunk, bigChunk] });
    expect([declared.status, chunked.status]).toEqual([413, 413]);
    expect(ok.received.length).toBe(before);
  });

  it('escapes XML special characters in the XML outcome', async () => {
    const reply = await send({ path: '/Patient/p1', headers: ['Accept', 'application/fhir+xml'] });
    expect(reply.status).toBe(404);
    expect(reply.body.toString('utf8')).toContain(`<diagnostics value="fhirmesh intermediary &apos;${INTERMEDIARY}&apos;: `);
  });
});

describe('destination errors', () => {
  it('passes a 404 with the destination own OperationOutcome through byte for byte', async () => {
    const reply = await send({ path: '/Patient/gone', headers: ['X-Destination', 'failing', 'Accept', 'application/fhir+xml'] });
    expect(reply.status).toBe(404);
    expect(sha256(reply.body)).toBe(sha256(destinationOutcome));
    expect(header(reply, 'content-type')).toEqual(['application/fhir+json']);
    expect(header(reply, 'content-length')).toEqual([String(destinationOutcome.length)]);
    expect(header(reply, 'fhirmesh-error')).toEqual([]);
    expect(header(reply, 'fhirmesh-intermediary')).toEqual([]);
  });

  it('passes a 500 with an HTML body and its reason phrase through byte for byte', async () => {
    const reply = await send({ path: '/Patient/p1?_format=xml', headers: ['X-Destination', 'failing'] });
    expect(reply.status).toBe(500);
    expect(reply.statusMessage).toBe('Server Exploded');
    expect(sha256(reply.body)).toBe(sha256(destinationHtml));
    expect(header(reply, 'content-type')).toEqual(['text/html']);
    expect(header(reply, 'fhirmesh-error')).toEqual([]);
    expect(header(reply, 'fhirmesh-intermediary')).toEqual([]);
  });
});
