// Every RESTful interaction the IG names reaches a real FHIR server (the Medplum-based sample) through
// the proxy with the routing segment removed, and its answer (status, ETag, Location, Last-Modified,
// body) comes back as the server sent it: read to operations, by path segment and by X-Destination.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { endToEndHeaders, escapeRegExp, exchange, FHIR_JSON, FORM, jsonOf, type Exchange, startDestinationBehindProxy, type DestinationBehindProxy } from '../support/fhir-peers.ts';
import type { ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues } from '../support/upstream.ts';

let sample: SampleFhirServer;
let proxy: ProxyFixture;
/** The destination's public FHIR base: the proxy's URL plus the routing segment. */
let base: string;

let destination: DestinationBehindProxy;

beforeAll(async () => {
  destination = await startDestinationBehindProxy();
  ({ sample, proxy, base } = destination);
});

afterAll(async () => {
  await destination.stop();
});

interface Resource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [field: string]: unknown;
}

interface Bundle extends Resource {
  type: string;
  total?: number;
  entry?: { fullUrl?: string; resource?: Resource; response?: { status: string; location?: string; etag?: string } }[];
}

/** The last request the sample server received: what the proxy forwarded. */
function lastSeen(): { method: string; url: string; body: string; rawHeaders: string[] } {
  const seen = sample.requests.at(-1);
  if (seen === undefined) throw new Error('the sample server received nothing');
  return seen;
}

function json(body: unknown): { headers: Record<string, string>; body: string } {
  return { headers: { 'Content-Type': FHIR_JSON, Accept: FHIR_JSON }, body: JSON.stringify(body) };
}

async function createPatient(family: string): Promise<{ id: string; versionId: string; response: Exchange }> {
  const response = await exchange('POST', `${base}/Patient`, json({ resourceType: 'Patient', name: [{ family }] }));
  expect(response.status).toBe(201);
  const created = jsonOf<Resource>(response);
  return { id: created.id ?? '', versionId: created.meta?.versionId ?? '', response };
}

/** Sends the same request to the proxy and straight to the server: the two answers must agree. */
async function viaProxyAndDirect(method: string, path: string, headers: Record<string, string> = {}): Promise<[Exchange, Exchange]> {
  const proxied = await exchange(method, `${base}${path}`, { headers });
  const direct = await exchange(method, `${sample.url}${path}`, { headers });
  return [proxied, direct];
}

describe('read and vread', () => {
  it('reads by path segment: the server sees /fhir/Patient/pat-1 and the answer is the direct one', async () => {
    const [proxied, direct] = await viaProxyAndDirect('GET', '/Patient/pat-1');
    expect(proxied.status).toBe(200);
    expect(sample.requests.at(-2)?.url).toBe('/fhir/Patient/pat-1');
    expect(proxied.headers.etag).toMatch(/^W\/"[^"]+"$/);
    expect(proxied.headers['last-modified']).toBeDefined();
    expect(endToEndHeaders(proxied.rawHeaders)).toEqual(endToEndHeaders(direct.rawHeaders));
    expect(proxied.body.equals(direct.body)).toBe(true);
  });

  it('reads by X-Destination at the proxy root, and the header does not reach the server', async () => {
    const proxied = await exchange('GET', `${proxy.url}/Patient/pat-1`, { headers: { 'X-Destination': 'acme' } });
    expect(proxied.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/Patient/pat-1');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'x-destination')).toEqual([]);
    expect(jsonOf<Resource>(proxied).id).toBe('pat-1');
  });

  it('vreads a version named by the ETag', async () => {
    const current = await exchange('GET', `${base}/Patient/pat-2`);
    const versionId = /"([^"]+)"/.exec(current.headers.etag ?? '')?.[1] ?? '';
    const [proxied, direct] = await viaProxyAndDirect('GET', `/Patient/pat-2/_history/${versionId}`);
    expect(proxied.status).toBe(200);
    expect(sample.requests.at(-2)?.url).toBe(`/fhir/Patient/pat-2/_history/${versionId}`);
    expect(proxied.headers.etag).toBe(`W/"${versionId}"`);
    expect(endToEndHeaders(proxied.rawHeaders)).toEqual(endToEndHeaders(direct.rawHeaders));
    expect(proxied.body.equals(direct.body)).toBe(true);
  });

  it('passes a conditional read through: If-None-Match with the current ETag gives 304 and no body', async () => {
    const current = await exchange('GET', `${base}/Patient/pat-3`);
    const notModified = await exchange('GET', `${base}/Patient/pat-3`, { headers: { 'If-None-Match': current.headers.etag ?? '' } });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect(notModified.headers.etag).toBe(current.headers.etag);
    expect(rawHeaderValues(lastSeen().rawHeaders, 'if-none-match')).toEqual([current.headers.etag]);
    const lastModified = current.headers['last-modified'] ?? '';
    const unchangedSince = await exchange('GET', `${base}/Patient/pat-3`, { headers: { 'If-Modified-Since': lastModified } });
    expect(unchangedSince.status).toBe(304);
    expect(rawHeaderValues(lastSeen().rawHeaders, 'if-modified-since')).toEqual([lastModified]);
  });

  it('reads by HEAD: the headers of a GET, no body', async () => {
    const get = await exchange('GET', `${base}/Patient/pat-1`);
    const head = await exchange('HEAD', `${base}/Patient/pat-1`);
    expect(head.status).toBe(200);
    expect(lastSeen()).toMatchObject({ method: 'HEAD', url: '/fhir/Patient/pat-1' });
    expect(head.body.length).toBe(0);
    expect(endToEndHeaders(head.rawHeaders)).toEqual(endToEndHeaders(get.rawHeaders));
  });

  it('passes the originator Authorization to the destination untouched', async () => {
    const token = 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJvcmlnaW5hdG9yIn0.';
    const response = await exchange('GET', `${base}/Patient/pat-1`, { headers: { Authorization: token } });
    expect(response.status).toBe(200);
    expect(rawHeaderValues(lastSeen().rawHeaders, 'authorization')).toEqual([token]);
  });
});

describe('create', () => {
  it('answers 201 with Location under the public base, and ETag and Last-Modified of the new version', async () => {
    const { id, versionId, response } = await createPatient('Created-Through-Proxy');
    expect(lastSeen().method).toBe('POST');
    expect(lastSeen().url).toBe('/fhir/Patient');
    expect(JSON.parse(lastSeen().body)).toEqual({ resourceType: 'Patient', name: [{ family: 'Created-Through-Proxy' }] });
    expect(response.headers.location).toBe(`${base}/Patient/${id}/_history/${versionId}`);
    expect(response.headers.etag).toBe(`W/"${versionId}"`);
    // The proxied Location is the public one and it works: reading it goes back through the proxy.
    const followed = await exchange('GET', response.headers.location ?? '');
    expect(followed.status).toBe(200);
    expect(followed.headers['last-modified']).toBe(response.headers['last-modified']);
  });

  it('creates by X-Destination with a body that arrives byte for byte', async () => {
    const body = '{"resourceType":"Observation","status":"final","code":{"text":"héllo, byte-exact"},"subject":{"reference":"Patient/pat-1"}}';
    const response = await exchange('POST', `${proxy.url}/Observation`, {
      headers: { 'X-Destination': 'acme', 'Content-Type': FHIR_JSON },
      body,
    });
    expect(response.status).toBe(201);
    expect(lastSeen().url).toBe('/fhir/Observation');
    expect(lastSeen().body).toBe(body);
    expect(response.headers.location).toMatch(new RegExp(`^${escapeRegExp(base)}/Observation/[^/]+/_history/[^/]+$`));
  });

  it('passes If-None-Exist through: the second conditional create returns the first resource with 200', async () => {
    const payload = json({ resourceType: 'Patient', identifier: [{ system: 'urn:fhirmesh-test', value: 'once-only' }] });
    const headers = { ...payload.headers, 'If-None-Exist': 'identifier=urn:fhirmesh-test|once-only' };
    const first = await exchange('POST', `${base}/Patient`, { headers, body: payload.body });
    expect(rawHeaderValues(lastSeen().rawHeaders, 'if-none-exist')).toEqual(['identifier=urn:fhirmesh-test|once-only']);
    const second = await exchange('POST', `${base}/Patient`, { headers, body: payload.body });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(jsonOf<Resource>(second).id).toBe(jsonOf<Resource>(first).id);
  });
});

describe('update, patch, delete', () => {
  it('updates with a matching If-Match (200, new ETag) and refuses a stale one with the server 412', async () => {
    const { id, versionId } = await createPatient('Before-Update');
    const body = JSON.stringify({ resourceType: 'Patient', id, name: [{ family: 'After-Update' }] });
    const headers = { 'Content-Type': FHIR_JSON };

    const stale = await exchange('PUT', `${base}/Patient/${id}`, { headers: { ...headers, 'If-Match': 'W/"not-the-version"' }, body });
    expect(stale.status).toBe(412);
    expect(jsonOf<Resource>(stale).resourceType).toBe('OperationOutcome');
    // The destination's error, not the intermediary's.
    expect(stale.headers['fhirmesh-error']).toBeUndefined();
    expect(rawHeaderValues(lastSeen().rawHeaders, 'if-match')).toEqual(['W/"not-the-version"']);

    const matched = await exchange('PUT', `${base}/Patient/${id}`, { headers: { ...headers, 'If-Match': `W/"${versionId}"` }, body });
    expect(matched.status).toBe(200);
    expect(lastSeen().method).toBe('PUT');
    expect(lastSeen().url).toBe(`/fhir/Patient/${id}`);
    const updated = jsonOf<Resource>(matched);
    expect(updated.name).toEqual([{ family: 'After-Update' }]);
    expect(matched.headers.etag).toBe(`W/"${updated.meta?.versionId ?? ''}"`);
    expect(matched.headers.etag).not.toBe(`W/"${versionId}"`);
  });

  it('patches with JSON Patch', async () => {
    const { id } = await createPatient('Patched');
    const patch = JSON.stringify([{ op: 'add', path: '/birthDate', value: '1999-12-31' }]);
    const response = await exchange('PATCH', `${base}/Patient/${id}`, { headers: { 'Content-Type': 'application/json-patch+json' }, body: patch });
    expect(response.status).toBe(200);
    expect(lastSeen().method).toBe('PATCH');
    expect(lastSeen().url).toBe(`/fhir/Patient/${id}`);
    expect(lastSeen().body).toBe(patch);
    expect(jsonOf<Resource>(response)).toMatchObject({ id, birthDate: '1999-12-31', name: [{ family: 'Patched' }] });
  });

  it('deletes, after which the server answers 410 Gone through the proxy', async () => {
    const { id } = await createPatient('Deleted');
    const deleted = await exchange('DELETE', `${base}/Patient/${id}`);
    expect(deleted.status).toBe(200);
    expect(lastSeen().method).toBe('DELETE');
    expect(lastSeen().url).toBe(`/fhir/Patient/${id}`);
    const gone = await exchange('GET', `${base}/Patient/${id}`);
    expect(gone.status).toBe(410);
    expect(jsonOf<Resource>(gone).resourceType).toBe('OperationOutcome');
  });
});

describe('history', () => {
  it('serves instance history with every version, fullUrls under the public base', async () => {
    const { id, versionId } = await createPatient('History');
    await exchange('PUT', `${base}/Patient/${id}`, json({ resourceType: 'Patient', id, name: [{ family: 'History-2' }] }));
    const response = await exchange('GET', `${base}/Patient/${id}/_history`);
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe(`/fhir/Patient/${id}/_history`);
    const bundle = jsonOf<Bundle>(response);
    expect(bundle.type).toBe('history');
    expect(bundle.entry?.map((e) => e.resource?.meta?.versionId)).toContain(versionId);
    expect(bundle.entry).toHaveLength(2);
    for (const entry of bundle.entry ?? []) expect(entry.fullUrl).toBe(`${base}/Patient/${id}`);
  });

  it('serves type history', async () => {
    const response = await exchange('GET', `${base}/Patient/_history?_count=3`);
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/Patient/_history?_count=3');
    const bundle = jsonOf<Bundle>(response);
    expect(bundle.type).toBe('history');
    expect(bundle.entry?.every((e) => e.resource === undefined || e.resource.resourceType === 'Patient')).toBe(true);
  });

  it('serves system history by X-Destination', async () => {
    const response = await exchange('GET', `${proxy.url}/_history?_count=5`, { headers: { 'X-Destination': 'acme' } });
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/_history?_count=5');
    expect(jsonOf<Bundle>(response).type).toBe('history');
  });
});

describe('search', () => {
  it('searches by GET with the query unchanged and fullUrls under the public base', async () => {
    const [proxied, direct] = await viaProxyAndDirect('GET', '/Patient?family=Silva&_count=10');
    expect(proxied.status).toBe(200);
    expect(sample.requests.at(-2)?.url).toBe('/fhir/Patient?family=Silva&_count=10');
    const bundle = jsonOf<Bundle>(proxied);
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry?.map((e) => e.fullUrl)).toEqual([`${base}/Patient/pat-1`]);
    expect(proxied.body.equals(direct.body)).toBe(true);
  });

  it('searches by POST _search with a form body that arrives as sent', async () => {
    const response = await exchange('POST', `${base}/Patient/_search`, { headers: { 'Content-Type': FORM }, body: 'family=Silva' });
    expect(response.status).toBe(200);
    expect(lastSeen().method).toBe('POST');
    expect(lastSeen().url).toBe('/fhir/Patient/_search');
    expect(lastSeen().body).toBe('family=Silva');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'content-type')).toEqual([FORM]);
    expect(jsonOf<Bundle>(response).entry?.map((e) => e.resource?.id)).toEqual(['pat-1']);
  });

  it('searches by POST _search by X-Destination', async () => {
    const response = await exchange('POST', `${proxy.url}/Observation/_search`, {
      headers: { 'X-Destination': 'acme', 'Content-Type': FORM },
      body: 'subject=Patient/pat-2',
    });
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/Observation/_search');
    expect(jsonOf<Bundle>(response).entry?.map((e) => e.resource?.id)).toEqual(['obs-3']);
  });
});

describe('capabilities', () => {
  it('serves /metadata from the destination, naming the public base', async () => {
    const response = await exchange('GET', `${base}/metadata`, { headers: { Accept: FHIR_JSON } });
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/metadata');
    const statement = jsonOf<Resource & { implementation?: { url?: string } }>(response);
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(statement.implementation?.url).toBe(base);
  });
});

describe('batch and transaction', () => {
  it('posts a batch Bundle to the base and gets each entry answered', async () => {
    const response = await exchange(
      'POST',
      base,
      json({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: 'Patient/pat-1' } },
          { request: { method: 'GET', url: 'Patient/no-such-patient' } },
          { resource: { resourceType: 'Basic', code: { text: 'from batch' } }, request: { method: 'POST', url: 'Basic' } },
        ],
      }),
    );
    expect(response.status).toBe(200);
    expect(lastSeen().method).toBe('POST');
    expect(lastSeen().url).toBe('/fhir');
    const bundle = jsonOf<Bundle>(response);
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry?.map((e) => e.response?.status.slice(0, 3))).toEqual(['200', '404', '201']);
    expect(bundle.entry?.[2]?.response?.location).toMatch(new RegExp(`^${escapeRegExp(base)}/Basic/`));
  });

  it('posts a transaction Bundle by X-Destination, with urn:uuid references resolved', async () => {
    const patientUrn = 'urn:uuid:0b6b7c53-7e0e-4a5e-9d42-7d4f7d9a1f01';
    const payload = json({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: patientUrn, resource: { resourceType: 'Patient', name: [{ family: 'Transaction' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'probe' }, subject: { reference: patientUrn } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    const response = await exchange('POST', proxy.url, { headers: { ...payload.headers, 'X-Destination': 'acme' }, body: payload.body });
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir');
    expect(lastSeen().body).toBe(payload.body);
    const bundle = jsonOf<Bundle>(response);
    expect(bundle.type).toBe('transaction-response');
    const [patientEntry, observationEntry] = bundle.entry ?? [];
    expect(observationEntry?.resource?.subject).toEqual({ reference: `Patient/${patientEntry?.resource?.id ?? ''}` });
    expect(patientEntry?.response?.location).toMatch(new RegExp(`^${escapeRegExp(base)}/Patient/[^/]+/_history/`));
  });
});

describe('operations', () => {
  it('runs the system-level $ping', async () => {
    const response = await exchange('GET', `${base}/$ping`);
    expect(response.status).toBe(200);
    expect(lastSeen().url).toBe('/fhir/$ping');
    expect(jsonOf<Resource & { parameter: { name: string; valueString?: string }[] }>(response).parameter[0]).toEqual({
      name: 'server',
      valueString: 'acme',
    });
  });

  it('runs the type-level $count with its search parameters', async () => {
    const [proxied, direct] = await viaProxyAndDirect('GET', '/Observation/$count?subject=Patient/pat-1');
    expect(proxied.status).toBe(200);
    expect(sample.requests.at(-2)?.url).toBe('/fhir/Observation/$count?subject=Patient/pat-1');
    expect(proxied.body.equals(direct.body)).toBe(true);
    const count = jsonOf<Resource & { parameter: { name: string; valueInteger?: number }[] }>(proxied).parameter[0];
    expect(count?.name).toBe('count');
    expect(count?.valueInteger).toBeGreaterThan(0);
  });

  it('runs the instance-level $touch by X-Destination, which writes a new version', async () => {
    const before = await exchange('GET', `${base}/Practitioner/prac-1`);
    const touched = await exchange('POST', `${proxy.url}/Practitioner/prac-1/$touch`, { headers: { 'X-Destination': 'acme' } });
    expect(touched.status).toBe(200);
    expect(lastSeen().method).toBe('POST');
    expect(lastSeen().url).toBe('/fhir/Practitioner/prac-1/$touch');
    expect(touched.headers.etag).toMatch(/^W\/"[^"]+"$/);
    expect(touched.headers.etag).not.toBe(before.headers.etag);
    expect(touched.headers.etag).toBe(`W/"${jsonOf<Resource>(touched).meta?.versionId ?? ''}"`);
  });

  it('runs Patient/$everything at instance level', async () => {
    const [proxied, direct] = await viaProxyAndDirect('GET', '/Patient/pat-2/$everything');
    expect(proxied.status).toBe(200);
    expect(sample.requests.at(-2)?.url).toBe('/fhir/Patient/pat-2/$everything');
    expect(proxied.body.equals(direct.body)).toBe(true);
    const bundle = jsonOf<Bundle>(proxied);
    expect(bundle.entry?.map((e) => `${e.resource?.resourceType ?? ''}/${e.resource?.id ?? ''}`).sort()).toEqual([
      'Observation/obs-3',
      'Patient/pat-2',
      'ServiceRequest/sr-1',
    ]);
    expect(bundle.entry?.every((e) => e.fullUrl?.startsWith(`${base}/`))).toBe(true);
  });
});
