// Each addressing mode of the IG reaches the destination with the routing metadata removed:
// X-Destination header, first path segment, Host (subdomain and vanity, any case, any port),
// and `_x-destination` only where the route enables it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues, startUpstream, type TestUpstream } from '../support/upstream.ts';

let acme: TestUpstream;
let other: TestUpstream;
let proxy: ProxyFixture;

beforeAll(async () => {
  acme = await startUpstream();
  other = await startUpstream();
  proxy = await startProxyFixture(
    routeYaml(
      'acme',
      `
destination: acme-payer
addressing:
  header: true
  pathSegment: true
  hosts: [acme-payer.gw.example.org, fhir.acme.example]
  queryParameter: true
backend:
  url: ${acme.url}/r4`,
    ) +
      routeYaml(
        'other',
        `
destination: other
addressing:
  header: true
backend:
  url: ${other.url}/fhir`,
      ),
  );
});

afterAll(async () => {
  await proxy.stop();
  await acme.close();
  await other.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(proxy.url + path, { headers });
}

describe('addressing modes', () => {
  it('routes by X-Destination and removes the header', async () => {
    const res = await get('/Patient/p1?_elements=id', { 'X-Destination': 'acme-payer' });
    expect(res.status).toBe(200);
    const seen = acme.received.at(-1);
    expect(seen?.url).toBe('/r4/Patient/p1?_elements=id');
    expect(rawHeaderValues(seen?.rawHeaders ?? [], 'x-destination')).toEqual([]);
  });

  it('routes by the first path segment and strips it', async () => {
    const res = await get('/acme-payer/Observation?code=1234-5&subject=Patient/p1');
    expect(res.status).toBe(200);
    expect(acme.received.at(-1)?.url).toBe('/r4/Observation?code=1234-5&subject=Patient/p1');
  });

  it('routes by subdomain host, ignoring case and port', async () => {
    const res = await fetchWithHost('ACME-Payer.GW.example.org:8443', '/Patient/p1');
    expect(res.status).toBe(200);
    expect(acme.received.at(-1)?.url).toBe('/r4/Patient/p1');
  });

  it('routes by vanity host', async () => {
    const res = await fetchWithHost('fhir.acme.example', '/metadata');
    expect(res.status).toBe(200);
    expect(acme.received.at(-1)?.url).toBe('/r4/metadata');
  });

  it('routes by _x-destination where enabled and removes only that parameter', async () => {
    const res = await get('/Patient?name=smith&_x-destination=acme-payer&_count=5');
    expect(res.status).toBe(200);
    expect(acme.received.at(-1)?.url).toBe('/r4/Patient?name=smith&_count=5');
  });

  it('refuses _x-destination for a route that does not enable it, with 404', async () => {
    const res = await get('/Patient?_x-destination=other');
    expect(res.status).toBe(404);
  });

  it('sends the backend its own host in Host and the original in Forwarded', async () => {
    await fetchWithHost('fhir.acme.example', '/Patient/p1');
    const seen = acme.received.at(-1);
    expect(rawHeaderValues(seen?.rawHeaders ?? [], 'host')).toEqual([`127.0.0.1:${acme.port}`]);
    expect(rawHeaderValues(seen?.rawHeaders ?? [], 'forwarded')).toEqual(['by=_gw-test;for=127.0.0.1;host=fhir.acme.example;proto=http']);
  });

  it('accepts agreeing metadata (header and path naming the same destination)', async () => {
    const res = await get('/acme-payer/Patient/p1', { 'X-Destination': 'acme-payer' });
    expect(res.status).toBe(200);
    expect(acme.received.at(-1)?.url).toBe('/r4/Patient/p1');
  });

  it('routes a second destination by header to its own backend', async () => {
    const res = await get('/Patient', { 'X-Destination': 'other' });
    expect(res.status).toBe(200);
    expect(other.received.at(-1)?.url).toBe('/fhir/Patient');
  });
});

/** fetch() will not let a caller set Host; node:http will. */
async function fetchWithHost(host: string, path: string): Promise<{ status: number }> {
  const http = await import('node:http');
  const url = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, headers: { Host: host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}
