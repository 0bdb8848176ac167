// A request that already carries this intermediary's Via has come round a cycle: 508 before any
// upstream is contacted. Via entries of other intermediaries are not loops and are forwarded, and a
// real two-proxy cycle ends at the first proxy with a 508 that the second passes back unchanged.

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRoutesFile } from '../../proxy/src/table/routes-file.ts';
import { eventually } from '../support/eventually.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { rawHeaderValues, startUpstream, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let proxy: ProxyFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  proxy = await startProxyFixture(
    routeYaml('acme', `destination: acme\naddressing: { header: true, pathSegment: true }\nbackend: { url: ${upstream.url}/fhir }`),
    { intermediaryId: 'gw-a' },
  );
});

afterAll(async () => {
  await proxy.stop();
  await upstream.close();
});

interface Reply {
  status: number;
  rawHeaders: string[];
  body: Buffer;
}

function send(base: string, path: string, headers: string[]): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, headers: ['Host', url.host, ...headers], agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function expectLoop(reply: Reply, intermediaryId: string): void {
  expect(reply.status).toBe(508);
  expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-error')).toEqual(['FHIRMESH_LOOP_DETECTED']);
  expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-intermediary')).toEqual([intermediaryId]);
  const outcome = JSON.parse(reply.body.toString('utf8'));
  expect(outcome.resourceType).toBe('OperationOutcome');
  expect(outcome.issue[0].code).toBe('processing');
  expect(outcome.issue[0].details.coding[0].code).toBe('FHIRMESH_LOOP_DETECTED');
  expect(outcome.issue[0].diagnostics).toBe(
    `fhirmesh intermediary '${intermediaryId}': the request has already passed through '${intermediaryId}' (Via); check the routes for a cycle`,
  );
}

describe('our own Via', () => {
  const loops: [string, string[]][] = [
    ['alone', ['Via', '1.1 gw-a']],
    ['with a protocol name', ['Via', 'HTTP/1.1 gw-a']],
    ['with a comment', ['Via', '1.1 gw-a (fhirmesh)']],
    ['after other hops in one field', ['Via', '1.0 edge, 1.1 gw-a, 1.1 gw-b']],
    ['in a second Via field', ['Via', '1.1 edge', 'Via', '1.1 gw-a']],
  ];
  for (const [name, headers] of loops) {
    it(`answers 508 and contacts no upstream when it appears ${name}`, async () => {
      const before = upstream.received.length;
      expectLoop(await send(proxy.url, '/acme/Patient/p1', headers), 'gw-a');
      expect(upstream.received.length).toBe(before);
    });
  }
});

describe('other intermediaries Via', () => {
  const notLoops: [string, string][] = [
    ['another id', '1.1 gw-b'],
    ['an id our id is a prefix of', '1.1 gw-a2'],
    ['an id that is a prefix of ours', '1.1 gw-'],
    ['our id only inside a comment', '1.1 edge (after gw-a)'],
    ['our id as a host with a port', '1.1 gw-a:8443'],
  ];
  for (const [name, via] of notLoops) {
    it(`forwards a request whose Via has ${name}, with ours appended`, async () => {
      const reply = await send(proxy.url, '/acme/Patient/p1', ['Via', via]);
      expect(reply.status).toBe(200);
      expect(rawHeaderValues(upstream.received.at(-1)?.rawHeaders ?? [], 'via')).toEqual([`${via}, 1.1 gw-a`]);
    });
  }
});

describe('a cycle between two proxies', () => {
  let a: ProxyFixture;
  let b: ProxyFixture;

  beforeAll(async () => {
    // a's route needs b's address, which exists only once b runs: start a on a placeholder, then reload.
    a = await startProxyFixture(routeYaml('loop', 'destination: loop\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:9/fhir }'), {
      intermediaryId: 'gw-loop-a',
    });
    b = await startProxyFixture(
      routeYaml('loop-b', `destination: loop-b\naddressing: { header: true }\nbackend: { url: ${a.url}/fhir, nextHopDestination: loop }`),
      { intermediaryId: 'gw-loop-b' },
    );
    const placeholder = a.holder.current.version;
    a.writeRoutes(
      routeYaml('loop', `destination: loop\naddressing: { header: true }\nbackend: { url: ${b.url}/fhir, nextHopDestination: loop-b }`),
    );
    await eventually(() => {
      if (a.holder.current.version === placeholder) {
        // A refused file says why (the fixture's logger is silent); a valid one is just not loaded yet.
        loadRoutesFile(a.routesFile);
        throw new Error('proxy a never loaded its new routes');
      }
    }, 5_000, 20);
  });

  afterAll(async () => {
    await a.stop();
    await b.stop();
  });

  it('ends at the first proxy with 508, passed back unchanged by the second', async () => {
    const reply = await send(a.url, '/Patient/p1', ['X-Destination', 'loop']);
    // b relays a's answer as a destination answer: a's OperationOutcome and headers, nothing of b's.
    expectLoop(reply, 'gw-loop-a');
  });
});
