// A route's rules delegate part of one destination to other backends by resource type, interaction,
// operation and method: the first matching rule wins, and a request no rule matches (batch included,
// since the proxy never reads bodies) goes to the route's own backend. Real FHIR servers on loopback.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleFhirServer, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { exchange, FHIR_JSON } from '../support/fhir-peers.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let main: SampleFhirServer;
let labs: SampleFhirServer;
/** A third backend that answers everything with a marker, for rules that send requests neither server should see. */
let archive: TestUpstream;
let proxy: ProxyFixture;
let base: string;

const ARCHIVE_ANSWER = JSON.stringify({ resourceType: 'Bundle', type: 'history', meta: { source: 'urn:fhirmesh:archive' } });

beforeAll(async () => {
  main = await startSampleFhirServer({ name: 'main', seed: true });
  labs = await startSampleFhirServer({ name: 'labs', seed: true });
  archive = await startUpstream((_req, res) => {
    res.writeHead(200, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(ARCHIVE_ANSWER) });
    res.end(ARCHIVE_ANSWER);
  });
  proxy = await startProxyFixture(
    routeYaml(
      'acme',
      `
destination: acme
addressing: { header: true, pathSegment: true }
backend: { url: ${main.url} }
rules:
  - name: lab-orders
    match: { resourceTypes: [ServiceRequest], interactions: [create] }
    backend: { url: ${labs.url} }
  - name: counts
    match: { operations: [$count] }
    backend: { url: ${labs.url} }
  - name: observation-history
    match: { resourceTypes: [Observation], interactions: [history] }
    backend: { url: ${archive.url}/archive }
  - name: history
    match: { interactions: [history] }
    backend: { url: ${labs.url} }
  - name: order-posts
    match: { resourceTypes: [ServiceRequest, Task], methods: [POST] }
    backend: { url: ${archive.url}/archive }`,
    ) +
      routeYaml(
        'plain',
        `
destination: plain
addressing: { pathSegment: true }
backend: { url: ${labs.url} }`,
      ),
  );
  base = `${proxy.url}/acme`;
  // Both servers answer for the one destination, so both name its public base.
  main.setPublicBaseUrl(base);
  labs.setPublicBaseUrl(base);
});

afterAll(async () => {
  await proxy.stop();
  await archive.close();
  await labs.close();
  await main.close();
});

type Backend = 'main' | 'labs' | 'archive';

/** Sends one request through the proxy and says which backend received it (exactly one must). */
async function routedTo(
  method: string,
  url: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ backend: Backend; forwardedUrl: string; status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const before = { main: main.requests.length, labs: labs.requests.length, archive: archive.received.length };
  const response = await exchange(method, url, init);
  const reached: { backend: Backend; url: string }[] = [];
  for (const request of main.requests.slice(before.main)) reached.push({ backend: 'main', url: request.url });
  for (const request of labs.requests.slice(before.labs)) reached.push({ backend: 'labs', url: request.url });
  for (const request of archive.received.slice(before.archive)) reached.push({ backend: 'archive', url: request.url });
  expect(reached, `${method} ${url} reached exactly one backend`).toHaveLength(1);
  const [only] = reached as [{ backend: Backend; url: string }];
  return { backend: only.backend, forwardedUrl: only.url, status: response.status, text: response.text, headers: response.headers };
}

function sourceOf(text: string): string | undefined {
  return (JSON.parse(text) as { meta?: { source?: string } }).meta?.source;
}

const serviceRequest = JSON.stringify({
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  code: { text: 'CBC' },
  subject: { reference: 'Patient/pat-1' },
});

describe('rules', () => {
  it('sends a ServiceRequest create to labs (lab-orders), not to the later order-posts rule that also matches', async () => {
    const result = await routedTo('POST', `${base}/ServiceRequest`, { headers: { 'Content-Type': FHIR_JSON }, body: serviceRequest });
    expect(result.backend).toBe('labs');
    expect(result.forwardedUrl).toBe('/fhir/ServiceRequest');
    expect(result.status).toBe(201);
    const created = JSON.parse(result.text) as { id: string; meta: { versionId: string } };
    expect(result.headers.location).toBe(`${base}/ServiceRequest/${created.id}/_history/${created.meta.versionId}`);
    // It lives on labs only: a read (no rule matches) goes to main, which does not have it.
    const read = await routedTo('GET', `${base}/ServiceRequest/${created.id}`);
    expect(read.backend).toBe('main');
    expect(read.status).toBe(404);
  });

  it('sends a ServiceRequest create by X-Destination to labs as well', async () => {
    const result = await routedTo('POST', `${proxy.url}/ServiceRequest`, {
      headers: { 'X-Destination': 'acme', 'Content-Type': FHIR_JSON },
      body: serviceRequest,
    });
    expect(result.backend).toBe('labs');
    expect(result.status).toBe(201);
  });

  it('sends a ServiceRequest read, search and update to main (no rule matches)', async () => {
    const read = await routedTo('GET', `${base}/ServiceRequest/sr-1`);
    expect(read).toMatchObject({ backend: 'main', forwardedUrl: '/fhir/ServiceRequest/sr-1', status: 200 });
    expect(sourceOf(read.text)).toBe('urn:fhirmesh:sample-fhir-server:main');
    const search = await routedTo('GET', `${base}/ServiceRequest?subject=Patient/pat-2`);
    expect(search).toMatchObject({ backend: 'main', status: 200 });
    const current = JSON.parse(read.text) as Record<string, unknown>;
    const update = await routedTo('PUT', `${base}/ServiceRequest/sr-1`, {
      headers: { 'Content-Type': FHIR_JSON },
      body: JSON.stringify({ ...current, meta: undefined, priority: 'urgent' }),
    });
    expect(update).toMatchObject({ backend: 'main', forwardedUrl: '/fhir/ServiceRequest/sr-1', status: 200 });
  });

  it('sends $count at any type to labs (counts)', async () => {
    const observations = await routedTo('GET', `${base}/Observation/$count?subject=Patient/pat-1`);
    expect(observations).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/Observation/$count?subject=Patient/pat-1', status: 200 });
    const patients = await routedTo('GET', `${base}/Patient/$count`);
    expect(patients).toMatchObject({ backend: 'labs', status: 200 });
    expect(JSON.parse(patients.text)).toMatchObject({ resourceType: 'Parameters', parameter: [{ name: 'count' }] });
  });

  it('sends $count to labs when the client percent-encodes the $ (%24count), as the destination reads it', async () => {
    // Some FHIR clients encode the `$` of operation names, and servers (this sample among them) run
    // the operation all the same; a rule written for `$count` must not be bypassed by the spelling.
    const encoded = await routedTo('GET', `${base}/Observation/%24count?subject=Patient/pat-1`);
    expect(JSON.parse(encoded.text)).toMatchObject({ resourceType: 'Parameters', parameter: [{ name: 'count' }] });
    expect(encoded).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/Observation/%24count?subject=Patient/pat-1', status: 200 });
  });

  it('sends other operations to main', async () => {
    const ping = await routedTo('GET', `${base}/$ping`);
    expect(ping).toMatchObject({ backend: 'main', forwardedUrl: '/fhir/$ping', status: 200 });
    expect(ping.text).toContain('"valueString":"main"');
    const everything = await routedTo('GET', `${base}/Patient/pat-1/$everything`);
    expect(everything).toMatchObject({ backend: 'main', status: 200 });
  });

  it('sends Observation history to archive: observation-history comes before the general history rule', async () => {
    const type = await routedTo('GET', `${base}/Observation/_history`);
    expect(type).toMatchObject({ backend: 'archive', forwardedUrl: '/archive/Observation/_history', status: 200 });
    const instance = await routedTo('GET', `${base}/Observation/obs-1/_history`);
    expect(instance).toMatchObject({ backend: 'archive', forwardedUrl: '/archive/Observation/obs-1/_history' });
    expect(sourceOf(instance.text)).toBe('urn:fhirmesh:archive');
  });

  it('sends every other level of history to labs (history)', async () => {
    const instance = await routedTo('GET', `${base}/Patient/pat-1/_history`);
    expect(instance).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/Patient/pat-1/_history', status: 200 });
    const type = await routedTo('GET', `${base}/Patient/_history`);
    expect(type).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/Patient/_history', status: 200 });
    const system = await routedTo('GET', `${base}/_history`);
    expect(system).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/_history', status: 200 });
  });

  it('does not apply history rules to vread, which goes to main', async () => {
    const read = await routedTo('GET', `${base}/Patient/pat-1`);
    const versionId = /"([^"]+)"/.exec(String(read.headers.etag))?.[1] ?? '';
    const vread = await routedTo('GET', `${base}/Patient/pat-1/_history/${versionId}`);
    expect(vread).toMatchObject({ backend: 'main', forwardedUrl: `/fhir/Patient/pat-1/_history/${versionId}`, status: 200 });
  });

  it('sends a Task create to archive (order-posts), the first rule it matches', async () => {
    const result = await routedTo('POST', `${base}/Task`, {
      headers: { 'Content-Type': FHIR_JSON },
      body: JSON.stringify({ resourceType: 'Task', status: 'requested', intent: 'order' }),
    });
    expect(result).toMatchObject({ backend: 'archive', forwardedUrl: '/archive/Task' });
  });
});

describe('no matching rule', () => {
  it('sends reads, searches, creates of other types and capabilities to the route backend', async () => {
    expect(await routedTo('GET', `${base}/Patient/pat-1`)).toMatchObject({ backend: 'main', status: 200 });
    expect(await routedTo('GET', `${base}/Observation?subject=Patient/pat-1`)).toMatchObject({ backend: 'main', status: 200 });
    const created = await routedTo('POST', `${base}/Observation`, {
      headers: { 'Content-Type': FHIR_JSON },
      body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'glucose' } }),
    });
    expect(created).toMatchObject({ backend: 'main', forwardedUrl: '/fhir/Observation', status: 201 });
    const metadata = await routedTo('GET', `${base}/metadata`);
    expect(metadata).toMatchObject({ backend: 'main', forwardedUrl: '/fhir/metadata', status: 200 });
    expect(metadata.text).toContain("fhirmesh sample destination 'main'");
  });

  it('sends a batch to the route backend even when it holds a ServiceRequest create (bodies are not read)', async () => {
    const result = await routedTo('POST', base, {
      headers: { 'Content-Type': FHIR_JSON },
      body: JSON.stringify({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ resource: JSON.parse(serviceRequest) as unknown, request: { method: 'POST', url: 'ServiceRequest' } }],
      }),
    });
    expect(result).toMatchObject({ backend: 'main', forwardedUrl: '/fhir', status: 200 });
    expect(JSON.parse(result.text)).toMatchObject({ type: 'batch-response', entry: [{ response: { status: expect.stringMatching(/^201/) } }] });
  });

  it('sends everything for a route without rules to its backend', async () => {
    const created = await routedTo('POST', `${proxy.url}/plain/ServiceRequest`, { headers: { 'Content-Type': FHIR_JSON }, body: serviceRequest });
    expect(created).toMatchObject({ backend: 'labs', forwardedUrl: '/fhir/ServiceRequest', status: 201 });
    expect(await routedTo('GET', `${proxy.url}/plain/Patient/pat-1/_history`)).toMatchObject({ backend: 'labs', status: 200 });
    expect(await routedTo('GET', `${proxy.url}/plain/Observation/_history`)).toMatchObject({ backend: 'labs', status: 200 });
  });
});
