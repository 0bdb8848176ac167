// Two fhirmesh proxies in a chain (inbound gateway gw-a → delegated intermediary gw-b → destination):
// answers equal the direct ones, each hop adds its Via and Forwarded entry, X-Destination names the
// next hop only, and an error gw-b raises reaches the originator through gw-a unchanged, naming gw-b.

import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleFhirServer, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { endToEndHeaders, exchange, FHIR_JSON, jsonOf, type Exchange } from '../support/fhir-peers.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { freePort } from '../support/spawn-controller.ts';
import { rawHeaderValues, startUpstream, type ReceivedRequest, type TestUpstream } from '../support/upstream.ts';

let sample: SampleFhirServer;
let gwA: ProxyFixture;
let gwB: ProxyFixture;
let tap: Tap;
let silent: TestUpstream;
/** The destination's public base: the inbound gateway's URL plus its routing segment. */
let base: string;

beforeAll(async () => {
  sample = await startSampleFhirServer({ name: 'acme', seed: true });
  silent = await startUpstream(() => undefined);
  const closedPort = await freePort();
  // gw-b first: gw-a's routes need its URL.
  gwB = await startProxyFixture(
    routeYaml('acme-east', `destination: acme-east\naddressing: { header: true }\nbackend: { url: ${sample.url} }`) +
      routeYaml('acme-west', `destination: acme-west\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }`) +
      routeYaml(
        'acme-slow',
        `destination: acme-slow\naddressing: { header: true }\nbackend: { url: ${silent.url}/fhir }\ntimeouts: { firstByte: 300ms }`,
      ),
    { intermediaryId: 'gw-b' },
  );
  tap = await startTap(gwB.url);
  const viaGwB = (destination: string, nextHop: string, backendUrl = gwB.url): string =>
    routeYaml(
      destination,
      `
destination: ${destination}
addressing: { pathSegment: true }
backend:
  url: ${backendUrl}
  nextHopDestination: ${nextHop}
timeouts: { firstByte: 5s }`,
    );
  gwA = await startProxyFixture(
    viaGwB('acme', 'acme-east') +
      viaGwB('acme-tapped', 'acme-east', tap.url) +
      viaGwB('acme-down', 'acme-west') +
      viaGwB('acme-slow', 'acme-slow') +
      viaGwB('acme-lost', 'acme-nowhere'),
    { intermediaryId: 'gw-a' },
  );
  base = `${gwA.url}/acme`;
  sample.setPublicBaseUrl(base);
});

afterAll(async () => {
  await gwA.stop();
  await tap.close();
  await gwB.stop();
  await silent.close();
  await sample.close();
});

function lastSeen(): { method: string; url: string; rawHeaders: string[]; body: string } {
  const seen = sample.requests.at(-1);
  if (seen === undefined) throw new Error('the sample server received nothing');
  return seen;
}

function expectSameAnswer(chained: Exchange, direct: Exchange): void {
  expect(chained.status).toBe(direct.status);
  expect(endToEndHeaders(chained.rawHeaders)).toEqual(endToEndHeaders(direct.rawHeaders));
  expect(chained.body.equals(direct.body)).toBe(true);
}

describe('through both intermediaries', () => {
  it('answers a read exactly as the destination does directly', async () => {
    const chained = await exchange('GET', `${base}/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(lastSeen().url).toBe('/fhir/Patient/pat-1');
    const direct = await exchange('GET', `${sample.url}/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(chained.status).toBe(200);
    expectSameAnswer(chained, direct);
  });

  it('answers a search exactly as directly, with fullUrls under the public base', async () => {
    const chained = await exchange('GET', `${base}/Observation?subject=Patient/pat-1&_count=5`);
    expect(lastSeen().url).toBe('/fhir/Observation?subject=Patient/pat-1&_count=5');
    const direct = await exchange('GET', `${sample.url}/Observation?subject=Patient/pat-1&_count=5`);
    expectSameAnswer(chained, direct);
    const bundle = jsonOf<{ entry: { fullUrl: string }[] }>(chained);
    expect(bundle.entry.length).toBeGreaterThan(0);
    for (const entry of bundle.entry) expect(entry.fullUrl.startsWith(`${base}/Observation/`)).toBe(true);
  });

  it('passes a destination error through both hops unchanged', async () => {
    const chained = await exchange('GET', `${base}/Patient/no-such-patient`);
    const direct = await exchange('GET', `${sample.url}/Patient/no-such-patient`);
    expect(chained.status).toBe(404);
    expect(chained.headers['fhirmesh-error']).toBeUndefined();
    expectSameAnswer(chained, direct);
  });

  it('creates with the body byte for byte and hands back the public Location', async () => {
    const body = '{"resourceType":"Patient","name":[{"family":"Chained"}]}';
    const created = await exchange('POST', `${base}/Patient`, { headers: { 'Content-Type': FHIR_JSON }, body });
    expect(created.status).toBe(201);
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/fhir/Patient', body });
    const id = jsonOf<{ id: string; meta: { versionId: string } }>(created);
    expect(created.headers.location).toBe(`${base}/Patient/${id.id}/_history/${id.meta.versionId}`);
    expect(created.headers.etag).toBe(`W/"${id.meta.versionId}"`);
    expect((await exchange('GET', created.headers.location ?? '')).status).toBe(200);
  });

  it('shows the destination both hops in Via and Forwarded, and no X-Destination', async () => {
    await exchange('GET', `${base}/metadata`);
    const seen = lastSeen();
    expect(seen.url).toBe('/fhir/metadata');
    expect(rawHeaderValues(seen.rawHeaders, 'via')).toEqual(['1.1 gw-a, 1.1 gw-b']);
    const forwarded = rawHeaderValues(seen.rawHeaders, 'forwarded');
    expect(forwarded).toHaveLength(1);
    const elements = (forwarded[0] ?? '').split(',').map((e) => e.trim());
    expect(elements).toEqual([
      `by=_gw-a;for=127.0.0.1;host="${new URL(gwA.url).host}";proto=http`,
      `by=_gw-b;for=127.0.0.1;host="${new URL(gwB.url).host}";proto=http`,
    ]);
    expect(rawHeaderValues(seen.rawHeaders, 'x-destination')).toEqual([]);
    expect(rawHeaderValues(seen.rawHeaders, 'host')).toEqual([`127.0.0.1:${sample.port}`]);
  });

  it('sends gw-b the request with X-Destination naming the next hop and the routing segment removed', async () => {
    const response = await exchange('GET', `${gwA.url}/acme-tapped/Patient/pat-2?_elements=id`);
    expect(response.status).toBe(200);
    const atGwB = tap.received.at(-1);
    expect(atGwB?.url).toBe('/Patient/pat-2?_elements=id');
    expect(rawHeaderValues(atGwB?.rawHeaders ?? [], 'x-destination')).toEqual(['acme-east']);
    expect(rawHeaderValues(atGwB?.rawHeaders ?? [], 'via')).toEqual(['1.1 gw-a']);
    expect(rawHeaderValues(atGwB?.rawHeaders ?? [], 'forwarded')).toEqual([`by=_gw-a;for=127.0.0.1;host="${new URL(gwA.url).host}";proto=http`]);
    // gw-b routed it by that header alone (acme-east has no other addressing) to the destination.
    expect(lastSeen().url).toBe('/fhir/Patient/pat-2?_elements=id');
    expect(rawHeaderValues(lastSeen().rawHeaders, 'via')).toEqual(['1.1 gw-a, 1.1 gw-b']);
  });
});

describe('errors raised by the delegated intermediary', () => {
  /** What gw-b answers when asked directly, to compare with what reached the originator through gw-a. */
  async function fromGwB(nextHop: string, path: string): Promise<Exchange> {
    return exchange('GET', `${gwB.url}${path}`, { headers: { 'X-Destination': nextHop, Accept: FHIR_JSON } });
  }

  it('passes gw-b 502 for its refused backend through gw-a unchanged, naming gw-b', async () => {
    const before = sample.requests.length;
    const chained = await exchange('GET', `${gwA.url}/acme-down/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(chained.status).toBe(502);
    expect(chained.headers['fhirmesh-intermediary']).toBe('gw-b');
    expect(chained.headers['fhirmesh-error']).toBe('FHIRMESH_UPSTREAM_REFUSED');
    const outcome = jsonOf<{ resourceType: string; issue: { diagnostics: string }[] }>(chained);
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]?.diagnostics).toMatch(/^fhirmesh intermediary 'gw-b': /);
    expect(chained.text).not.toContain('gw-a');
    expectSameAnswer(chained, await fromGwB('acme-west', '/Patient/pat-1'));
    expect(sample.requests.length).toBe(before);
  });

  it('passes gw-b 504 for its silent backend through gw-a (whose own timeout is longer), naming gw-b', async () => {
    const chained = await exchange('GET', `${gwA.url}/acme-slow/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(chained.status).toBe(504);
    expect(chained.headers['fhirmesh-intermediary']).toBe('gw-b');
    expect(chained.headers['fhirmesh-error']).toBe('FHIRMESH_UPSTREAM_TIMEOUT');
    expect(jsonOf<{ issue: { diagnostics: string }[] }>(chained).issue[0]?.diagnostics).toMatch(/^fhirmesh intermediary 'gw-b': /);
    expect(silent.received.at(-1)?.url).toBe('/fhir/Patient/pat-1');
  });

  it('passes gw-b 404 for a next-hop destination it does not know through gw-a, naming gw-b', async () => {
    const chained = await exchange('GET', `${gwA.url}/acme-lost/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(chained.status).toBe(404);
    expect(chained.headers['fhirmesh-intermediary']).toBe('gw-b');
    expect(chained.headers['fhirmesh-error']).toBe('FHIRMESH_DESTINATION_UNKNOWN');
    expect(chained.text).toContain("'acme-nowhere'");
    expectSameAnswer(chained, await fromGwB('acme-nowhere', '/Patient/pat-1'));
  });

  it('keeps its own errors for what gw-a itself cannot route, naming gw-a', async () => {
    const lost = await exchange('GET', `${gwA.url}/nowhere/Patient/pat-1`, { headers: { Accept: FHIR_JSON } });
    expect(lost.status).toBe(404);
    expect(lost.headers['fhirmesh-intermediary']).toBe('gw-a');
    expect(jsonOf<{ issue: { diagnostics: string }[] }>(lost).issue[0]?.diagnostics).toMatch(/^fhirmesh intermediary 'gw-a': /);
  });
});

// ---------------------------------------------------------------------------------------------

interface Tap {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * A transparent recorder in front of gw-b: relays each request with its raw headers untouched
 * (Host included) and the answer back, keeping a copy of what gw-b was sent.
 */
async function startTap(targetUrl: string): Promise<Tap> {
  const target = new URL(targetUrl);
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], headers: req.headers, body: Buffer.alloc(0) });
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.rawHeaders, setHost: false, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
