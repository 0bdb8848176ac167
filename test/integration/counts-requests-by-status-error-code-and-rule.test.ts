// The proxy's metrics answer what an SRE asks first: which error (exact status, the intermediary's
// error code), which way a request went (the rule that served it), how long the next hop took to
// connect and to answer, what was retried and why, what the pools hold, which table runs; with
// placeholders a real destination's name cannot collide with, and Node's metrics under their own names.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let main: TestUpstream;
let labs: TestUpstream;
let unavailable: TestUpstream;
let proxy: ProxyFixture;
/** A later hop: what it answers itself, gw-test counts as the intermediaries' too. */
let nextHop: ProxyFixture;

beforeAll(async () => {
  main = await startUpstream();
  labs = await startUpstream();
  unavailable = await startUpstream((_req, res) => {
    res.writeHead(503, { 'Content-Length': 0 });
    res.end();
  });
  const closedPort = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  nextHop = await startProxyFixture(routeYaml('deep', `destination: deep\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }`), {
    intermediaryId: 'gw-next',
  });
  proxy = await startProxyFixture(
    routeYaml(
      'acme',
      `destination: acme
addressing: { pathSegment: true }
backend: { url: ${main.url}/fhir }
rules:
  - name: lab-orders
    match: { resourceTypes: [ServiceRequest], interactions: [create] }
    backend: { url: ${labs.url}/fhir }`,
    ) +
      // A real destination called `unknown`: it must not share series with the placeholder.
      routeYaml('unknown', `destination: unknown\naddressing: { pathSegment: true }\nbackend: { url: ${main.url}/fhir }`) +
      routeYaml('down', `destination: down\naddressing: { pathSegment: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }`) +
      routeYaml('busy', `destination: busy\naddressing: { pathSegment: true }\nbackend: { url: ${unavailable.url}/fhir }\nretries: { attempts: 2, retryOn: [unavailable] }`) +
      routeYaml('via-next', `destination: via-next\naddressing: { pathSegment: true }\nbackend: { url: ${nextHop.url}, nextHopDestination: deep }`),
  );
  const send = async (path: string, init: RequestInit = {}): Promise<number> => {
    const res = await fetch(`${proxy.url}${path}`, init);
    await res.arrayBuffer();
    return res.status;
  };
  expect(await send('/acme/Patient/1')).toBe(200);
  expect(await send('/acme/ServiceRequest', { method: 'POST', body: '{}', headers: { 'content-type': 'application/fhir+json' } })).toBe(200);
  expect(await send('/unknown/Patient/1')).toBe(200);
  expect(await send('/nobody/Patient/1')).toBe(404);
  expect(await send('/down/Patient/1')).toBe(502);
  expect(await send('/busy/Patient/1')).toBe(503);
  expect(await send('/via-next/Patient/1')).toBe(502);
});

afterAll(async () => {
  await proxy.stop();
  await nextHop.stop();
  await Promise.all([main.close(), labs.close(), unavailable.close()]);
});

async function metrics(): Promise<string> {
  return (await fetch(`${proxy.adminUrl}/metrics`)).text();
}

/** The value of the one sample of `name` whose labels include every pair of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const [series = '', value] = line.split(/ (?=[^ ]+$)/);
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) return Number(value);
  }
  return undefined;
}

describe('fhirmesh_proxy_requests_total', () => {
  it('counts the exact status and the intermediary error code, so 502 and 504 are told apart', async () => {
    const text = await metrics();
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'down', status: '502', status_class: '5xx', origin: 'intermediary', error_code: 'FHIRMESH_UPSTREAM_REFUSED' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'busy', status: '503', origin: 'destination', error_code: '' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'acme', status: '200', error_code: '' })).toBe(1);
  });

  it('counts an error a later intermediary answered (its Fhirmesh-Error) as the intermediaries’, not the destination’s', async () => {
    const text = await metrics();
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'via-next', status: '502', origin: 'intermediary', error_code: 'FHIRMESH_UPSTREAM_REFUSED' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'via-next', origin: 'destination' })).toBeUndefined();
  });

  it('counts a request under the rule whose backend served it, (default) for the route’s own', async () => {
    const text = await metrics();
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'acme', rule: 'lab-orders', interaction: 'create', resource_type: 'ServiceRequest' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'acme', rule: '(default)', interaction: 'read' })).toBe(1);
    expect(labs.received).toHaveLength(1);
  });

  it('keeps a destination really called unknown apart from the placeholder for unresolved requests', async () => {
    const text = await metrics();
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: 'unknown', status: '200' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_requests_total', { destination: '(unknown)', status: '404', error_code: 'FHIRMESH_DESTINATION_UNKNOWN' })).toBe(1);
  });
});

describe('upstream metrics', () => {
  it('times connects and first bytes per attempt, and counts retries by reason', async () => {
    const text = await metrics();
    // busy: three attempts, the first two retried because of the 503.
    expect(sample(text, 'fhirmesh_proxy_upstream_first_byte_duration_seconds_count', { destination: 'busy' })).toBe(3);
    expect(sample(text, 'fhirmesh_proxy_upstream_retries_total', { destination: 'busy', reason: 'unavailable' })).toBe(2);
    expect(sample(text, 'fhirmesh_proxy_upstream_first_byte_duration_seconds_count', { destination: 'acme', rule: 'lab-orders' })).toBe(1);
    expect(sample(text, 'fhirmesh_proxy_upstream_connect_duration_seconds_count', { destination: 'acme', rule: '(default)' })).toBe(1);
    // A refused connection never connected: nothing to time, no first byte.
    expect(sample(text, 'fhirmesh_proxy_upstream_connect_duration_seconds_count', { destination: 'down' })).toBeUndefined();
  });

  it('shows pooled connections per backend origin, active and idle', async () => {
    const text = await metrics();
    const origin = new URL(main.url).origin;
    expect(sample(text, 'fhirmesh_proxy_upstream_sockets', { backend: origin, state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'fhirmesh_proxy_upstream_sockets', { backend: origin, state: 'active' })).toBe(0);
  });
});

describe('table and process metrics', () => {
  it('names the table version in force, 1, and says it is current', async () => {
    const text = await metrics();
    expect(sample(text, 'fhirmesh_proxy_table_info', { version: proxy.holder.current.version })).toBe(1);
    expect(text).toMatch(/^fhirmesh_proxy_table_stale_seconds 0$/m);
    expect(text.split('\n').filter((l) => l.startsWith('fhirmesh_proxy_table_info{'))).toHaveLength(1);
  });

  it('serves Node’s metrics under their standard names, and one in-flight gauge', async () => {
    const text = await metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).not.toMatch(/^fhirmesh_proxy_(process|nodejs)_/m);
    expect(text).toMatch(/^fhirmesh_proxy_requests_in_flight 0$/m);
    expect(text).not.toMatch(/^fhirmesh_proxy_active_requests/m);
  });
});
