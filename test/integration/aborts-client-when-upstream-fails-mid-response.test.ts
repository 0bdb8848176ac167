// Once the destination's status line has been relayed, a failure can no longer become a 502: the
// proxy cuts the originator's connection (never a second status, never a clean end of a truncated
// body) and counts it in fhirmesh_proxy_aborted_responses_total.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../support/metrics.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

const PARTIAL = '{"resourceType":"Bundle","type":"searchset","entry":[';

let upstream: TestUpstream;
let proxy: ProxyFixture;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url === '/fhir/metadata') {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': '2' });
      res.end('{}');
      return;
    }
    const chunked = req.url?.includes('chunked') === true;
    res.writeHead(200, chunked ? { 'Content-Type': 'application/fhir+json' } : { 'Content-Type': 'application/fhir+json', 'Content-Length': '5000' });
    res.write(PARTIAL);
    // Give the proxy time to relay the first bytes, then fail: die, or (stall) go silent.
    if (!req.url?.includes('stall')) setTimeout(() => res.socket?.destroy(), 50);
  });
  proxy = await startProxyFixture(
    routeYaml('acme', `destination: acme\naddressing: { pathSegment: true }\nbackend: { url: ${upstream.url}/fhir }`) +
      routeYaml('stuck', `destination: stuck\naddressing: { pathSegment: true }\nbackend: { url: ${upstream.url}/fhir }\ntimeouts: { idle: 300ms }`),
  );
});

afterAll(async () => {
  await proxy.stop();
  await upstream.close();
});

/** Everything the originator's socket receives until the proxy closes it, raw. */
function rawExchange(path: string): Promise<{ data: string }> {
  const url = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: application/fhir+json\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    // Cut by FIN or by RST: either way the originator sees the connection end mid-body.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => resolve({ data }));
    // A proxy that kept the connection open would fail the test here instead of hanging it.
    socket.setTimeout(5_000, () => socket.destroy(new Error('the proxy never cut the connection')));
  });
}

async function abortedCount(destination: string): Promise<number> {
  // No sample until the first abort for that destination.
  return (await metricValue(proxy.adminUrl, 'fhirmesh_proxy_aborted_responses_total', { destination })) ?? 0;
}

function statusLines(data: string): string[] {
  return data.match(/HTTP\/1\.1 \d{3}[^\r]*\r\n/g) ?? [];
}

describe('a failure after the response started', () => {
  it('cuts a Content-Length response short: one status, the bytes relayed so far, then the connection closes', async () => {
    const before = await abortedCount('acme');
    const { data } = await rawExchange('/acme/Patient?name=fixed-length');
    expect(statusLines(data)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(data).toMatch(/\r\nContent-Length: 5000\r\n/);
    const body = data.slice(data.indexOf('\r\n\r\n') + 4);
    // Fewer bytes than declared: the originator can tell the body is truncated.
    expect(body).toBe(PARTIAL);
    await expect.poll(() => abortedCount('acme'), { timeout: 2_000 }).toBe(before + 1);
  });

  it('cuts a chunked response without the last chunk, so it cannot look complete', async () => {
    const before = await abortedCount('acme');
    const { data } = await rawExchange('/acme/Patient?name=chunked');
    expect(statusLines(data)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(data).toMatch(/\r\nTransfer-Encoding: chunked\r\n/);
    const body = data.slice(data.indexOf('\r\n\r\n') + 4);
    expect(body).toBe(`${PARTIAL.length.toString(16)}\r\n${PARTIAL}\r\n`);
    expect(body.endsWith('0\r\n\r\n')).toBe(false);
    await expect.poll(() => abortedCount('acme'), { timeout: 2_000 }).toBe(before + 1);
  });

  it('cuts a response whose destination goes silent for the idle timeout, and counts it', async () => {
    const before = await abortedCount('stuck');
    const started = performance.now();
    const { data } = await rawExchange('/stuck/Patient?name=stall');
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    expect(statusLines(data)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(data.slice(data.indexOf('\r\n\r\n') + 4)).toBe(PARTIAL);
    await expect.poll(() => abortedCount('stuck'), { timeout: 2_000 }).toBe(before + 1);
  });

  it('keeps serving new connections afterwards', async () => {
    const res = await fetch(`${proxy.url}/acme/metadata`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{}');
  });
});
