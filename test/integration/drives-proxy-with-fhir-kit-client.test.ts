// An unmodified FHIR client (fhir-kit-client from npm) works through the proxy as if it spoke to the
// destination directly: by path segment (baseUrl = the public base) and by header addressing
// (baseUrl = the proxy root plus customHeaders X-Destination), with the intermediary invisible.

import { Client, type FhirResource } from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { startDestinationBehindProxy, type DestinationBehindProxy } from '../support/fhir-peers.ts';
import type { ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues } from '../support/upstream.ts';

const INTERMEDIARY = 'gw-kit';

let sample: SampleFhirServer;
let proxy: ProxyFixture;
let base: string;
/** The originator that knows only the destination's public base URL. */
let client: Client;
/** The originator that addresses the destination with X-Destination at the proxy root. */
let headerClient: Client;

let destination: DestinationBehindProxy;

beforeAll(async () => {
  destination = await startDestinationBehindProxy({ intermediaryId: INTERMEDIARY });
  ({ sample, proxy, base } = destination);
  client = new Client({ baseUrl: base });
  headerClient = new Client({ baseUrl: proxy.url, customHeaders: { 'X-Destination': 'acme' } });
});

afterAll(async () => {
  await destination.stop();
});

interface Entry {
  fullUrl?: string;
  resource?: FhirResource & { id?: string };
  response?: { status: string; location?: string };
}

/** The HTTP response fhir-kit-client received for a resource it returned. */
function httpOf(resource: FhirResource): Response {
  const response = Client.httpFor(resource).response;
  if (!response) throw new Error('fhir-kit-client attached no response');
  return response;
}

/** The status and body of a request fhir-kit-client rejected. */
async function failure(request: Promise<unknown>): Promise<{ status: number; data: { resourceType: string; issue: { diagnostics?: string }[] } }> {
  try {
    await request;
  } catch (err) {
    const { response } = err as { response?: { status: number; data: { resourceType: string; issue: { diagnostics?: string }[] } } };
    if (response) return { status: response.status, data: response.data };
    throw err;
  }
  throw new Error('expected the request to fail');
}

function entriesOf(bundle: FhirResource): Entry[] {
  return (bundle.entry as Entry[] | undefined) ?? [];
}

function versionOf(resource: FhirResource): string {
  return (resource.meta as { versionId: string }).versionId;
}

function lastSeen(): { method: string; url: string; rawHeaders: string[] } {
  const seen = sample.requests.at(-1);
  if (seen === undefined) throw new Error('the sample server received nothing');
  return seen;
}

describe('path-segment addressing (baseUrl = public base)', () => {
  it('reads the CapabilityStatement, which names the public base', async () => {
    const statement = await client.capabilityStatement();
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(statement.implementation).toMatchObject({ url: base });
    expect(lastSeen().url).toBe('/fhir/metadata');
  });

  it('runs create, read, search, update and delete on one resource', async () => {
    const created = await client.create({
      resourceType: 'Patient',
      body: { resourceType: 'Patient', identifier: [{ system: 'urn:fhirmesh-test', value: 'kit-1' }], gender: 'female' },
    });
    const id = String(created.id);
    expect(httpOf(created).status).toBe(201);
    expect(httpOf(created).headers.get('location')).toBe(`${base}/Patient/${id}/_history/${versionOf(created)}`);
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir/Patient' });

    const read = await client.read({ resourceType: 'Patient', id });
    expect(read).toMatchObject({ id, gender: 'female' });
    expect(httpOf(read).headers.get('etag')).toBe(`W/"${versionOf(created)}"`);
    expect(lastSeen().url).toBe(`/fhir/Patient/${id}`);

    const found = await client.search({ resourceType: 'Patient', searchParams: { identifier: 'urn:fhirmesh-test|kit-1' } });
    expect(entriesOf(found).map((e) => e.fullUrl)).toEqual([`${base}/Patient/${id}`]);
    expect(lastSeen().url).toBe('/fhir/Patient?identifier=urn%3Afhirmesh-test%7Ckit-1');

    const updated = await client.update({
      resourceType: 'Patient',
      id,
      body: { ...read, gender: 'other' },
      options: { headers: { 'If-Match': `W/"${versionOf(read)}"` } },
    });
    expect(httpOf(updated).status).toBe(200);
    expect(updated.gender).toBe('other');
    expect(versionOf(updated)).not.toBe(versionOf(read));
    expect(rawHeaderValues(lastSeen().rawHeaders, 'if-match')).toEqual([`W/"${versionOf(read)}"`]);

    const deleted = await client.delete({ resourceType: 'Patient', id });
    expect(httpOf(deleted).status).toBe(200);
    expect(lastSeen()).toMatchObject({ method: 'DELETE', url: `/fhir/Patient/${id}` });
    const gone = await failure(client.read({ resourceType: 'Patient', id }));
    expect(gone.status).toBe(410);
    expect(gone.data.resourceType).toBe('OperationOutcome');
  });

  it('searches by POST _search and pages with the next link the destination handed out', async () => {
    const first = await client.search({ resourceType: 'Observation', searchParams: { _count: 2 }, options: { postSearch: true } });
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir/Observation/_search' });
    expect(entriesOf(first)).toHaveLength(2);
    const next = (first.link as { relation: string; url: string }[]).find((l) => l.relation === 'next');
    expect(next?.url.startsWith(`${base}/Observation?`)).toBe(true);
    const second = await client.nextPage({ bundle: first as FhirResource & { link: { relation: string; url: string }[] } });
    expect(second).toBeDefined();
    const secondIds = entriesOf(second ?? { resourceType: 'Bundle' }).map((e) => e.resource?.id);
    expect(secondIds.length).toBeGreaterThan(0);
    expect(secondIds).not.toContain(entriesOf(first)[0]?.resource?.id);
    expect(lastSeen().url.startsWith('/fhir/Observation?')).toBe(true);
  });

  it('posts a batch whose entries the destination answers one by one', async () => {
    const response = await client.batch({
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: 'Patient/pat-1' } },
          { resource: { resourceType: 'Basic', code: { text: 'kit batch' } }, request: { method: 'POST', url: 'Basic' } },
        ],
      },
    });
    expect(response.type).toBe('batch-response');
    // fhir-kit-client posts to `<base>/`; the proxy swaps the routing segment and keeps the rest as sent.
    expect(new URL(Client.httpFor(response).request?.url ?? '').pathname).toBe('/acme/');
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir/' });
    const [read, created] = entriesOf(response);
    expect(read?.resource?.id).toBe('pat-1');
    expect(created?.response?.status.startsWith('201')).toBe(true);
    expect(created?.response?.location?.startsWith(`${base}/Basic/`)).toBe(true);
  });

  it('reports a destination error as the destination sent it', async () => {
    const missing = await failure(client.read({ resourceType: 'Patient', id: 'no-such-patient' }));
    expect(missing.status).toBe(404);
    expect(missing.data.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(missing.data)).not.toContain(INTERMEDIARY);
  });
});

describe('header addressing (baseUrl = proxy root, customHeaders X-Destination)', () => {
  it('reads the CapabilityStatement', async () => {
    const statement = await headerClient.capabilityStatement();
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(lastSeen().url).toBe('/fhir/metadata');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'x-destination')).toEqual([]);
  });

  it('runs create, read, search, update and delete with X-Destination on every request', async () => {
    const created = await headerClient.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'Header-Kit' }] } });
    const id = String(created.id);
    expect(httpOf(created).status).toBe(201);
    // The destination's public base is path-addressed; the Location it hands out is that one.
    expect(httpOf(created).headers.get('location')).toBe(`${base}/Practitioner/${id}/_history/${versionOf(created)}`);
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir/Practitioner' });
    expect(rawHeaderValues(lastSeen().rawHeaders, 'x-destination')).toEqual([]);

    await expect(headerClient.read({ resourceType: 'Practitioner', id })).resolves.toMatchObject({ id, name: [{ family: 'Header-Kit' }] });
    const found = await headerClient.search({ resourceType: 'Practitioner', searchParams: { family: 'Header-Kit' } });
    expect(entriesOf(found).map((e) => e.resource?.id)).toEqual([id]);
    const updated = await headerClient.update({ resourceType: 'Practitioner', id, body: { resourceType: 'Practitioner', id, active: true } });
    expect(updated.active).toBe(true);
    expect(lastSeen()).toMatchObject({ method: 'PUT', url: `/fhir/Practitioner/${id}` });
    await headerClient.delete({ resourceType: 'Practitioner', id });
    expect((await failure(headerClient.read({ resourceType: 'Practitioner', id }))).status).toBe(410);
  });

  it('runs an operation and a batch', async () => {
    const ping = await headerClient.operation({ name: '$ping', method: 'GET' });
    expect(ping.parameter).toEqual(expect.arrayContaining([{ name: 'server', valueString: 'acme' }]));
    expect(lastSeen().url).toBe('/fhir/$ping');
    const batch = await headerClient.batch({
      body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient/pat-2' } }] },
    });
    expect(entriesOf(batch)[0]?.resource?.id).toBe('pat-2');
    // Posted to the proxy root `/`: with header addressing that is the destination's base itself.
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir' });
  });

  it('gets the intermediary own OperationOutcome (404, naming it) for a destination it does not know', async () => {
    const lost = new Client({ baseUrl: proxy.url, customHeaders: { 'X-Destination': 'nowhere' } });
    const before = sample.requests.length;
    const unknown = await failure(lost.read({ resourceType: 'Patient', id: 'pat-1' }));
    expect(unknown.status).toBe(404);
    expect(unknown.data.resourceType).toBe('OperationOutcome');
    expect(unknown.data.issue[0]?.diagnostics).toContain(`fhirmesh intermediary '${INTERMEDIARY}'`);
    expect(sample.requests.length).toBe(before);
  });
});
