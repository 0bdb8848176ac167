// The FHIR asynchronous request pattern (Bulk Data $export) completes end to end through the proxy:
// kick-off 202 + Content-Location under the public base, polls 202 then 200 with a manifest,
// NDJSON downloads, DELETE to cancel; a kick-off the destination refuses comes back unchanged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_SEED_IDS, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { endToEndHeaders, escapeRegExp, exchange, FHIR_JSON, jsonOf, startDestinationBehindProxy, type DestinationBehindProxy } from '../support/fhir-peers.ts';
import type { ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues } from '../support/upstream.ts';

let sample: SampleFhirServer;
let proxy: ProxyFixture;
let base: string;

let destination: DestinationBehindProxy;

beforeAll(async () => {
  destination = await startDestinationBehindProxy();
  ({ sample, proxy, base } = destination);
});

afterAll(async () => {
  await destination.stop();
});

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

const KICK_OFF = { Accept: FHIR_JSON, Prefer: 'respond-async' };
const JOB_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

function lastSeen(): { method: string; url: string; rawHeaders: string[] } {
  const seen = sample.requests.at(-1);
  if (seen === undefined) throw new Error('the sample server received nothing');
  return seen;
}

/** Kicks off an export through the proxy and returns its poll URL. */
async function kickOff(url: string, headers: Record<string, string> = KICK_OFF): Promise<string> {
  const accepted = await exchange('GET', url, { headers });
  expect(accepted.status).toBe(202);
  return accepted.headers['content-location'] ?? '';
}

describe('system-level $export', () => {
  let pollUrl = '';

  it('kicks off with 202 and a Content-Location under the proxy public base, Prefer passed unchanged', async () => {
    const accepted = await exchange('GET', `${base}/$export`, { headers: KICK_OFF });
    expect(accepted.status).toBe(202);
    expect(lastSeen().url).toBe('/fhir/$export');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'prefer')).toEqual(['respond-async']);
    pollUrl = accepted.headers['content-location'] ?? '';
    expect(pollUrl).toMatch(new RegExp(`^${escapeRegExp(base)}/\\$export-poll-status/${JOB_ID}$`));
    expect(jsonOf(accepted).resourceType).toBe('OperationOutcome');
  });

  it('polls through the proxy: 202 with X-Progress and Retry-After first, then 200 with the manifest', async () => {
    const jobId = pollUrl.split('/').at(-1) ?? '';
    const inProgress = await exchange('GET', pollUrl, { headers: { Accept: 'application/json' } });
    expect(inProgress.status).toBe(202);
    expect(lastSeen().url).toBe(`/fhir/$export-poll-status/${jobId}`);
    expect(inProgress.headers['x-progress']).toBe('exporting: complete on the next poll');
    expect(inProgress.headers['retry-after']).toBe('1');

    const done = await exchange('GET', pollUrl, { headers: { Accept: 'application/json' } });
    expect(done.status).toBe(200);
    expect(done.headers['content-type']).toBe('application/json; charset=utf-8');
    const manifest = jsonOf<Manifest>(done);
    expect(manifest).toMatchObject({ request: `${base}/$export`, requiresAccessToken: false, error: [] });
    expect(manifest.output.map((o) => o.type)).toEqual(expect.arrayContaining(['Patient', 'Observation', 'Practitioner']));
    for (const output of manifest.output) {
      expect(output.url).toBe(`${base}/$export-file/${jobId}/${output.type}.ndjson`);
    }
  });

  it('downloads every output through the proxy as NDJSON whose lines parse as resources of its type', async () => {
    const manifest = jsonOf<Manifest>(await exchange('GET', pollUrl));
    expect(manifest.output.length).toBeGreaterThan(0);
    for (const output of manifest.output) {
      const download = await exchange('GET', output.url, { headers: { Accept: 'application/fhir+ndjson' } });
      expect(download.status, output.url).toBe(200);
      expect(lastSeen().url).toBe(new URL(output.url).pathname.replace(/^\/acme/, '/fhir'));
      expect(download.headers['content-type']).toBe('application/fhir+ndjson');
      const lines = download.text.trimEnd().split('\n');
      expect(lines).toHaveLength(output.count);
      const resources = lines.map((line) => JSON.parse(line) as { resourceType: string; id: string });
      for (const resource of resources) expect(resource.resourceType).toBe(output.type);
      if (output.type === 'Patient') {
        expect(resources.map((r) => r.id)).toEqual(expect.arrayContaining([...SAMPLE_SEED_IDS.Patient]));
      }
    }
  });

  it('cancels with DELETE on the poll URL (202), after which the job is gone (destination 404)', async () => {
    const cancelUrl = await kickOff(`${base}/$export`);
    const cancelled = await exchange('DELETE', cancelUrl);
    expect(cancelled.status).toBe(202);
    expect(lastSeen().method).toBe('DELETE');
    expect(lastSeen().url).toBe(`/fhir/$export-poll-status/${cancelUrl.split('/').at(-1) ?? ''}`);
    const gone = await exchange('GET', cancelUrl);
    expect(gone.status).toBe(404);
    expect(gone.headers['fhirmesh-error']).toBeUndefined();
  });
});

describe('Patient-level $export', () => {
  it('kicks off by X-Destination with its query unchanged and exports only the types asked for', async () => {
    const pollUrl = await kickOff(`${proxy.url}/Patient/$export?_type=Patient,Observation`, { ...KICK_OFF, 'X-Destination': 'acme' });
    expect(lastSeen().url).toBe('/fhir/Patient/$export?_type=Patient,Observation');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'x-destination')).toEqual([]);
    expect(pollUrl).toMatch(new RegExp(`^${escapeRegExp(base)}/\\$export-poll-status/${JOB_ID}$`));
    expect((await exchange('GET', pollUrl)).status).toBe(202);
    const manifest = jsonOf<Manifest>(await exchange('GET', pollUrl));
    expect(manifest.request).toBe(`${base}/Patient/$export?_type=Patient,Observation`);
    expect(manifest.output.map((o) => o.type).sort()).toEqual(['Observation', 'Patient']);
  });
});

describe('refused kick-off', () => {
  it('passes the destination 400 for a kick-off without Prefer: respond-async through unchanged', async () => {
    const proxied = await exchange('GET', `${base}/$export`, { headers: { Accept: FHIR_JSON } });
    const direct = await exchange('GET', `${sample.url}/$export`, { headers: { Accept: FHIR_JSON } });
    expect(proxied.status).toBe(400);
    expect(proxied.headers['fhirmesh-error']).toBeUndefined();
    expect(endToEndHeaders(proxied.rawHeaders)).toEqual(endToEndHeaders(direct.rawHeaders));
    expect(proxied.body.equals(direct.body)).toBe(true);
    expect(proxied.text).toContain('Prefer: respond-async');
  });
});
