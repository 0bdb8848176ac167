// Pins the sample destination FHIR server's behaviour over real HTTP on loopback, mostly through
// fhir-kit-client (an independent FHIR client); raw fetch only where a client hides what is asserted
// (304 and empty bodies, NDJSON downloads, exact request headers).

import { Client } from 'fhir-kit-client';
import type { FhirResource } from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_SEED_IDS, startSampleFhirServer } from '../../../cli/src/demo/sample-fhir-server.ts';
import type { SampleFhirServer } from '../../../cli/src/demo/sample-fhir-server.ts';
import type { Bundle, BundleEntry, BundleLink, CapabilityStatement, Observation, OperationOutcome, Patient } from '@medplum/fhirtypes';

let server: SampleFhirServer;
let client: Client;

beforeAll(async () => {
  server = await startSampleFhirServer({ name: 'lab', seed: true });
  client = new Client({ baseUrl: server.url });
});

afterAll(async () => {
  await server.close();
});

/** The HTTP response fhir-kit-client received for a resource it returned. */
function httpOf(resource: FhirResource): Response {
  const response = Client.httpFor(resource).response;
  if (!response) {
    throw new Error('fhir-kit-client attached no response');
  }
  return response;
}

/** The status of a request fhir-kit-client rejected, with the OperationOutcome it carried. */
async function failure(request: Promise<unknown>): Promise<{ status: number; data: OperationOutcome }> {
  try {
    await request;
  } catch (err) {
    const { response } = err as { response?: { status: number; data: OperationOutcome } };
    if (response) {
      return { status: response.status, data: response.data };
    }
    throw err;
  }
  throw new Error('expected the request to fail');
}

/** fhir-kit-client types results loosely; these views give them their FHIR shape. */
function entriesOf(bundle: FhirResource | undefined): BundleEntry[] {
  return (bundle as Bundle | undefined)?.entry ?? [];
}

function linksOf(bundle: FhirResource | undefined): BundleLink[] {
  return (bundle as Bundle | undefined)?.link ?? [];
}

function idsOf(bundle: FhirResource | undefined): string[] {
  return entriesOf(bundle).map((e) => String(e.resource?.id));
}

function versionOf(resource: FhirResource): string {
  return (resource.meta as { versionId: string }).versionId;
}

describe('startup', () => {
  it('serves under /fhir on loopback and exposes its base without a trailing slash', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/fhir`);
    expect(server.publicBaseUrl).toBe(server.url);
  });

  it('seeds stable ids', async () => {
    const patient = await client.read({ resourceType: 'Patient', id: 'pat-1' });
    expect(patient.name).toEqual([{ family: 'Silva', given: ['Ana'] }]);
    expect((patient.meta as { source: string }).source).toBe('urn:fhirmesh:sample-fhir-server:lab');
    for (const [resourceType, ids] of Object.entries(SAMPLE_SEED_IDS)) {
      for (const id of ids) {
        await expect(client.read({ resourceType, id })).resolves.toMatchObject({ resourceType, id });
      }
    }
  });
});

describe('capabilities', () => {
  it('answers GET /metadata with a CapabilityStatement built from the routes it serves', async () => {
    const statement = await client.capabilityStatement();
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(statement.fhirVersion).toBe('4.0.1');
    expect(httpOf(statement).headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const rest = (statement as unknown as CapabilityStatement).rest?.[0];
    expect(rest?.interaction?.map((i) => i.code).sort()).toEqual(['batch', 'history-system', 'search-system', 'transaction']);
    expect(rest?.operation?.map((o) => o.name).sort()).toEqual(['export', 'graphql', 'ping']);
    const patient = rest?.resource?.find((r) => r.type === 'Patient');
    expect(patient?.interaction?.map((i) => i.code).sort()).toEqual(
      ['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread'].sort(),
    );
    expect(patient?.operation?.map((o) => o.name).sort()).toEqual(['count', 'everything', 'export', 'touch']);
    expect(patient?.operation?.find((o) => o.name === 'export')?.definition).toBe(
      'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
    );
    expect(patient?.operation?.find((o) => o.name === 'touch')?.documentation).toMatch(/sample server's own operation/);
  });
});

describe('create, read, vread, update, patch, delete', () => {
  it('creates with 201, Location to the new version, ETag and Last-Modified', async () => {
    const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Create' }] } });
    const response = httpOf(created);
    const versionId = versionOf(created);
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe(`${server.url}/Patient/${String(created.id)}/_history/${versionId}`);
    expect(response.headers.get('etag')).toBe(`W/"${versionId}"`);
    expect(new Date(response.headers.get('last-modified') ?? '').toISOString().slice(0, 19)).toBe(
      String((created.meta as { lastUpdated: string }).lastUpdated).slice(0, 19),
    );
    expect(response.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
  });

  it('runs the full lifecycle, keeping every version readable and answering 410 after delete', async () => {
    const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', gender: 'female' } });
    const id = String(created.id);
    const firstVersion = versionOf(created);

    const read = await client.read({ resourceType: 'Patient', id });
    expect(read.gender).toBe('female');
    expect(httpOf(read).headers.get('etag')).toBe(`W/"${firstVersion}"`);

    const updated = await client.update({ resourceType: 'Patient', id, body: { resourceType: 'Patient', id, gender: 'male' } });
    expect(httpOf(updated).status).toBe(200);
    expect(versionOf(updated)).not.toBe(firstVersion);

    const patched = await client.patch({ resourceType: 'Patient', id, jsonPatch: [{ op: 'add', path: '/birthDate', value: '2001-02-03' }] });
    expect(patched).toMatchObject({ gender: 'male', birthDate: '2001-02-03' });

    const old = await client.vread({ resourceType: 'Patient', id, version: firstVersion });
    expect(old.gender).toBe('female');
    expect(old.birthDate).toBeUndefined();

    const deleted = await client.delete({ resourceType: 'Patient', id });
    expect(httpOf(deleted).status).toBe(200);
    const gone = await failure(client.read({ resourceType: 'Patient', id }));
    expect(gone.status).toBe(410);
    expect(gone.data.resourceType).toBe('OperationOutcome');
    await expect(client.vread({ resourceType: 'Patient', id, version: firstVersion })).resolves.toMatchObject({ gender: 'female' });
  });

  it('answers 201 with Location when PUT creates a resource with a client id', async () => {
    const body = { resourceType: 'Patient', id: 'client-chosen-id' };
    const created = await client.update({ resourceType: 'Patient', id: 'client-chosen-id', body });
    expect(httpOf(created).status).toBe(201);
    expect(httpOf(created).headers.get('location')).toBe(`${server.url}/Patient/client-chosen-id/_history/${versionOf(created)}`);
  });

  it('rejects an update whose If-Match names another version with 412, and applies a matching one', async () => {
    const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', gender: 'other' } });
    const id = String(created.id);
    const body = { resourceType: 'Patient', id, gender: 'unknown' };
    const mismatch = await failure(client.update({ resourceType: 'Patient', id, body, options: { headers: { 'If-Match': 'W/"not-the-version"' } } }));
    expect(mismatch.status).toBe(412);
    expect(mismatch.data.resourceType).toBe('OperationOutcome');
    const matched = await client.update({ resourceType: 'Patient', id, body, options: { headers: { 'If-Match': `W/"${versionOf(created)}"` } } });
    expect(matched.gender).toBe('unknown');
  });

  it('creates conditionally with If-None-Exist: the second create returns the first resource', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: 'if-none-exist-1' }] };
    const headers = { 'If-None-Exist': 'identifier=urn:test|if-none-exist-1' };
    const first = await client.create({ resourceType: 'Patient', body, options: { headers } });
    const second = await client.create({ resourceType: 'Patient', body, options: { headers } });
    expect(httpOf(first).status).toBe(201);
    expect(httpOf(second).status).toBe(200);
    expect(second.id).toBe(first.id);
    const found = await client.search({ resourceType: 'Patient', searchParams: { identifier: 'urn:test|if-none-exist-1' } });
    expect(found.total).toBe(1);
  });

  it('answers a conditional read with 304 when If-None-Match names the current version', async () => {
    const current = await client.read({ resourceType: 'Patient', id: 'pat-2' });
    const etag = httpOf(current).headers.get('etag') ?? '';
    const response = await fetch(`${server.url}/Patient/pat-2`, { headers: { 'If-None-Match': etag } });
    expect(response.status).toBe(304);
    expect(await response.text()).toBe('');
    const stale = await fetch(`${server.url}/Patient/pat-2`, { headers: { 'If-None-Match': 'W/"older"' } });
    expect(stale.status).toBe(200);
  });

  it('honours Prefer: return=minimal with an empty body but keeps Location and ETag', async () => {
    const response = await fetch(`${server.url}/Patient`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'return=minimal' },
      body: JSON.stringify({ resourceType: 'Patient' }),
    });
    expect(response.status).toBe(201);
    expect(await response.text()).toBe('');
    expect(response.headers.get('location')).toMatch(new RegExp(`^${server.url}/Patient/[^/]+/_history/[^/]+$`));
    expect(response.headers.get('etag')).toMatch(/^W\/"[^"]+"$/);
  });
});

describe('errors', () => {
  it('answers 404 with an OperationOutcome for an unknown id', async () => {
    const missing = await failure(client.read({ resourceType: 'Patient', id: 'does-not-exist' }));
    expect(missing.status).toBe(404);
    expect(missing.data).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  });

  it('answers 404 for a resource type FHIR R4 does not define', async () => {
    const response = await fetch(`${server.url}/Spaceship/1`);
    expect(response.status).toBe(404);
    const body = (await response.json()) as OperationOutcome;
    expect(body.issue[0]?.diagnostics).toContain("'Spaceship' is not a FHIR R4 resource type");
  });

  it('answers 400 for a body that is not JSON and 415 for XML', async () => {
    const broken = await fetch(`${server.url}/Patient`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: '{"resourceType":' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as OperationOutcome).resourceType).toBe('OperationOutcome');
    const xml = await fetch(`${server.url}/Patient`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+xml' }, body: '<Patient/>' });
    expect(xml.status).toBe(415);
  });

  it('answers 404 outside the /fhir base', async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/Patient/pat-1`);
    expect(response.status).toBe(404);
  });
});

describe('search', () => {
  it('searches by GET with fullUrl on every entry and a self link', async () => {
    const bundle = await client.search({ resourceType: 'Observation', searchParams: { subject: 'Patient/pat-1', code: 'http://loinc.org|8867-4' } });
    expect(bundle.type).toBe('searchset');
    expect(idsOf(bundle)).toEqual(['obs-1']);
    expect(entriesOf(bundle)[0]?.fullUrl).toBe(`${server.url}/Observation/obs-1`);
    expect(linksOf(bundle)[0]).toEqual({ relation: 'self', url: `${server.url}/Observation?subject=Patient%2Fpat-1&code=http%3A%2F%2Floinc.org%7C8867-4` });
  });

  it('searches by POST _search with a form body, merged with URL parameters', async () => {
    const bundle = await client.search({ resourceType: 'Patient', searchParams: { gender: 'male', family: 'Okafor' }, options: { postSearch: true } });
    expect(idsOf(bundle)).toEqual(['pat-2']);
    const request = server.requests.at(-1);
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/fhir/Patient/_search');
    expect(request?.body).toBe('gender=male&family=Okafor');
  });

  it('includes referenced resources with _include', async () => {
    const bundle = await client.search({ resourceType: 'MedicationRequest', searchParams: { _id: 'mr-1', _include: 'MedicationRequest:subject' } });
    expect(entriesOf(bundle).map((e) => [e.resource?.resourceType, e.search?.mode])).toEqual([
      ['MedicationRequest', 'match'],
      ['Patient', 'include'],
    ]);
  });

  it('pages with _count: next links follow to the following page', async () => {
    const first = await client.search({ resourceType: 'Observation', searchParams: { _count: 2 } });
    expect(idsOf(first)).toHaveLength(2);
    expect(first.total).toBe(4);
    const next = linksOf(first).find((l) => l.relation === 'next');
    expect(next?.url).toBe(`${server.url}/Observation?_count=2&_offset=2`);
    const second = await client.nextPage({ bundle: { ...first, link: linksOf(first) } });
    expect(idsOf(second)).toHaveLength(2);
    expect(idsOf(second)).not.toContain(idsOf(first)[0]);
    expect(linksOf(second).some((l) => l.relation === 'next')).toBe(false);
  });

  it('searches several types at the system level with _type', async () => {
    const bundle = await client.systemSearch({ searchParams: { _type: 'ServiceRequest,MedicationRequest' } });
    expect(idsOf(bundle).sort()).toEqual(['mr-1', 'sr-1']);
  });
});

describe('history', () => {
  it('lists instance history newest first, every time it is asked', async () => {
    const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', gender: 'female' } });
    const id = String(created.id);
    await client.update({ resourceType: 'Patient', id, body: { resourceType: 'Patient', id, gender: 'male' } });
    await client.patch({ resourceType: 'Patient', id, jsonPatch: [{ op: 'replace', path: '/gender', value: 'other' }] });
    // Medplum's MemoryRepository.readHistory reverses its stored array on each call; ask twice.
    for (let i = 0; i < 2; i++) {
      const history = await client.resourceHistory({ resourceType: 'Patient', id });
      expect(history.type).toBe('history');
      const entries = entriesOf(history);
      expect(entries.map((e) => (e.resource as Patient).gender)).toEqual(['other', 'male', 'female']);
      expect(entries.map((e) => e.request?.method)).toEqual(['PATCH', 'PUT', 'POST']);
      expect(entries[0]?.fullUrl).toBe(`${server.url}/Patient/${id}`);
      expect(entries[2]?.response?.etag).toBe(`W/"${versionOf(created)}"`);
    }
  });

  it('lists type and system history, with deletes', async () => {
    const created = await client.create({ resourceType: 'Basic', body: { resourceType: 'Basic', code: { text: 'history probe' } } });
    await client.delete({ resourceType: 'Basic', id: String(created.id) });
    const typeHistory = await client.typeHistory({ resourceType: 'Basic' });
    const entries = entriesOf(typeHistory);
    expect(entries.map((e) => e.request?.method)).toEqual(['DELETE', 'POST']);
    expect(entries[0]?.resource).toBeUndefined();
    expect(entries[0]?.fullUrl).toBe(`${server.url}/Basic/${String(created.id)}`);
    const systemHistory = await client.systemHistory({ options: { headers: {} } });
    expect(entriesOf(systemHistory)[0]).toMatchObject({ request: { method: 'DELETE', url: `Basic/${String(created.id)}` } });
    expect(systemHistory.total).toBeGreaterThan(10);
  });
});

describe('batch and transaction', () => {
  it('processes a batch entry by entry, failures included', async () => {
    const response = await client.batch({
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: 'Patient/pat-1' } },
          { request: { method: 'GET', url: 'Patient/no-such-patient' } },
          { resource: { resourceType: 'Basic', code: { text: 'from batch' } }, request: { method: 'POST', url: 'Basic' } },
        ],
      },
    });
    expect(response.type).toBe('batch-response');
    const entries = entriesOf(response);
    expect(entries.map((e) => e.response?.status)).toEqual(['200', '404', '201']);
    expect(entries[2]?.response?.location).toMatch(new RegExp(`^${server.url}/Basic/[^/]+/_history/[^/]+$`));
    expect(entries[2]?.fullUrl).toBe(`${server.url}/Basic/${String(entries[2]?.resource?.id)}`);
  });

  it('resolves urn:uuid references across transaction entries', async () => {
    const patientUrn = 'urn:uuid:6f6b1a3e-8b8e-4f43-9d55-0c7a2b0b9d11';
    const response = await client.transaction({
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: patientUrn, resource: { resourceType: 'Patient', name: [{ family: 'Transaction' }] }, request: { method: 'POST', url: 'Patient' } },
          {
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'probe' }, subject: { reference: patientUrn } },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      },
    });
    expect(response.type).toBe('transaction-response');
    const [patientEntry, observationEntry] = entriesOf(response);
    expect((observationEntry?.resource as Observation).subject?.reference).toBe(`Patient/${String(patientEntry?.resource?.id)}`);
  });

  it('rolls back a transaction whose later entry fails', async () => {
    const failed = await failure(
      client.transaction({
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: 'rolled-back' }] }, request: { method: 'POST', url: 'Patient' } },
            { resource: { resourceType: 'Patient', id: 'pat-3' }, request: { method: 'PUT', url: 'Patient/pat-3', ifMatch: 'W/"stale"' } },
          ],
        },
      }),
    );
    expect(failed.status).toBe(412);
    const found = await client.search({ resourceType: 'Patient', searchParams: { identifier: 'urn:test|rolled-back' } });
    expect(found.total).toBe(0);
    await expect(client.read({ resourceType: 'Patient', id: 'pat-3' })).resolves.toMatchObject({ name: [{ family: 'Chen' }] });
  });
});

describe('operations', () => {
  it('runs the system-level $ping (the sample server’s own)', async () => {
    const result = await client.operation({ name: '$ping', method: 'GET' });
    expect(result.resourceType).toBe('Parameters');
    expect((result.parameter as unknown[])[0]).toEqual({ name: 'server', valueString: 'lab' });
  });

  it('runs the type-level $count with search parameters (the sample server’s own)', async () => {
    const result = await client.operation({ name: 'count', resourceType: 'Observation', method: 'GET', input: { subject: 'Patient/pat-1' } });
    expect(result.parameter).toEqual([{ name: 'count', valueInteger: 2 }]);
  });

  it('runs the instance-level $touch, which writes a new version (the sample server’s own)', async () => {
    const before = await client.read({ resourceType: 'Practitioner', id: 'prac-1' });
    const touched = await client.operation({ name: 'touch', resourceType: 'Practitioner', id: 'prac-1' });
    expect(versionOf(touched)).not.toBe(versionOf(before));
    expect(httpOf(touched).headers.get('etag')).toBe(`W/"${versionOf(touched)}"`);
    expect(touched.name).toEqual(before.name);
  });

  it('runs Patient $everything over the Patient compartment', async () => {
    const bundle = await client.operation({ name: 'everything', resourceType: 'Patient', id: 'pat-2', method: 'GET' });
    const ids = entriesOf(bundle).map((e) => `${String(e.resource?.resourceType)}/${String(e.resource?.id)}`).sort();
    expect(ids).toEqual(['Observation/obs-3', 'Patient/pat-2', 'ServiceRequest/sr-1']);
  });
});

describe('asynchronous $export', () => {
  it('refuses a kick-off without Prefer: respond-async', async () => {
    const refused = await failure(client.request('$export'));
    expect(refused.status).toBe(400);
    expect(refused.data.issue[0]?.diagnostics).toContain('Prefer: respond-async');
  });

  it('kicks off with 202, polls 202 then 200, and downloads NDJSON of the repository', async () => {
    const kickoff = await client.request('$export', { options: { headers: { Prefer: 'respond-async' } } });
    const accepted = httpOf(kickoff);
    expect(accepted.status).toBe(202);
    const pollUrl = accepted.headers.get('content-location') ?? '';
    expect(pollUrl).toMatch(new RegExp(`^${server.url}/\\$export-poll-status/[0-9a-f-]{36}$`));

    const inProgress = await client.request(pollUrl);
    expect(httpOf(inProgress).status).toBe(202);
    expect(httpOf(inProgress).headers.get('x-progress')).toBeTruthy();
    expect(httpOf(inProgress).headers.get('retry-after')).toBe('1');

    const manifest = await client.request(pollUrl);
    expect(httpOf(manifest).status).toBe(200);
    expect(manifest).toMatchObject({ request: `${server.url}/$export`, requiresAccessToken: false, error: [] });
    const outputs = manifest.output as { type: string; url: string; count: number }[];
    const patients = outputs.find((o) => o.type === 'Patient');
    const jobId = pollUrl.split('/').at(-1) ?? '';
    expect(patients?.url).toBe(`${server.url}/$export-file/${jobId}/Patient.ndjson`);

    const download = await fetch(patients?.url ?? '');
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('application/fhir+ndjson');
    const lines = (await download.text()).trim().split('\n').map((line) => JSON.parse(line) as { resourceType: string; id: string });
    expect(lines).toHaveLength(patients?.count ?? -1);
    expect(lines.every((r) => r.resourceType === 'Patient')).toBe(true);
    expect(lines.map((r) => r.id)).toContain('pat-1');

    const again = await client.request(pollUrl);
    expect(httpOf(again).status).toBe(200);
    expect(again.transactionTime).toBe(manifest.transactionTime);
  });

  it('exports the Patient compartment at Patient/$export, filtered by _type', async () => {
    const kickoff = await client.request('Patient/$export?_type=Patient,Observation,Practitioner', { options: { headers: { Prefer: 'respond-async' } } });
    const pollUrl = httpOf(kickoff).headers.get('content-location') ?? '';
    await client.request(pollUrl);
    const manifest = await client.request(pollUrl);
    const types = (manifest.output as { type: string }[]).map((o) => o.type).sort();
    // Practitioner is not in the Patient compartment.
    expect(types).toEqual(['Observation', 'Patient']);
  });

  it('cancels a job with DELETE on its poll URL', async () => {
    const kickoff = await client.request('$export', { options: { headers: { Prefer: 'respond-async' } } });
    const pollUrl = httpOf(kickoff).headers.get('content-location') ?? '';
    const cancelled = await client.request(pollUrl, { method: 'DELETE' });
    expect(httpOf(cancelled).status).toBe(202);
    expect((await failure(client.request(pollUrl))).status).toBe(404);
  });
});

describe('public base URL', () => {
  it('writes fullUrl, Location, links and export URLs against the public base, changeable at runtime', async () => {
    const behindProxy = await startSampleFhirServer({ name: 'pharmacy', seed: true, publicBaseUrl: 'https://fhir.example.org/pharmacy/' });
    try {
      expect(behindProxy.publicBaseUrl).toBe('https://fhir.example.org/pharmacy');
      const direct = new Client({ baseUrl: behindProxy.url });
      const bundle = await direct.search({ resourceType: 'Patient', searchParams: { _id: 'pat-1' } });
      expect(entriesOf(bundle)[0]?.fullUrl).toBe('https://fhir.example.org/pharmacy/Patient/pat-1');
      expect(linksOf(bundle)[0]?.url).toBe('https://fhir.example.org/pharmacy/Patient?_id=pat-1');

      behindProxy.setPublicBaseUrl('http://127.0.0.1:9999/route/pharmacy');
      const created = await direct.create({ resourceType: 'Patient', body: { resourceType: 'Patient' } });
      expect(httpOf(created).headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:9999\/route\/pharmacy\/Patient\//);
      const kickoff = await direct.request('$export', { options: { headers: { Prefer: 'respond-async' } } });
      expect(httpOf(kickoff).headers.get('content-location')).toMatch(/^http:\/\/127\.0\.0\.1:9999\/route\/pharmacy\/\$export-poll-status\//);
      const capabilities = await direct.capabilityStatement();
      expect((capabilities.implementation as { url: string }).url).toBe('http://127.0.0.1:9999/route/pharmacy');

      expect(() => behindProxy.setPublicBaseUrl('not a url')).toThrow(/absolute http\(s\) URL/);
    } finally {
      await behindProxy.close();
    }
  });
});

describe('request recording', () => {
  it('records method, target and headers exactly as received', async () => {
    await fetch(`${server.url}/Patient/pat-1?_elements=name`, {
      headers: { Authorization: 'Bearer token-123', 'X-Custom-Case': 'Kept', Forwarded: 'for=192.0.2.1;proto=https' },
    });
    const recorded = server.requests.at(-1);
    expect(recorded?.method).toBe('GET');
    expect(recorded?.url).toBe('/fhir/Patient/pat-1?_elements=name');
    expect(recorded?.headers.authorization).toBe('Bearer token-123');
    expect(recorded?.headers.forwarded).toBe('for=192.0.2.1;proto=https');
    // undici lower-cases header names on the wire; rawHeaders keeps whatever arrived, in order.
    const names = (recorded?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['authorization', 'x-custom-case', 'forwarded', 'host']));
  });
});

describe('close', () => {
  it('closes despite open keep-alive connections, and refuses connections afterwards', async () => {
    const shortLived = await startSampleFhirServer({ name: 'short-lived' });
    const response = await fetch(`${shortLived.url}/metadata`, { headers: { Connection: 'keep-alive' } });
    await response.text();
    await shortLived.close();
    await expect(fetch(`${shortLived.url}/metadata`)).rejects.toThrow();
  });
});
