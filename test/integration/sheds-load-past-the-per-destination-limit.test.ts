// A destination that stops answering cannot take every socket and request slot of a sidecar: past
// --max-concurrent-per-destination its requests get 503 FHIRMESH_OVERLOADED with Retry-After at
// once, other destinations are served as before, and the slots come back as requests finish.

import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let proxy: ProxyFixture;
const held: http.ServerResponse[] = [];

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/slow') === true) {
      held.push(res);
      return;
    }
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  });
  proxy = await startProxyFixture(
    routeYaml('slow', `destination: slow\naddressing: { pathSegment: true }\nbackend: { url: ${upstream.url}/slow }`) +
      routeYaml('fast', `destination: fast\naddressing: { pathSegment: true }\nbackend: { url: ${upstream.url}/fast }`),
    { limits: { maxConcurrentPerDestination: 2 } },
  );
});

afterAll(async () => {
  for (const res of held.splice(0)) res.destroy();
  await proxy.stop();
  await upstream.close();
});

function get(path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${proxy.url}${path}`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

it('answers the third concurrent request to a stuck destination 503 with Retry-After, and serves the others', async () => {
  const first = get('/slow/Patient/1');
  const second = get('/slow/Patient/2');
  await expect.poll(() => held.length).toBe(2);
  const third = await get('/slow/Patient/3');
  expect(third.status).toBe(503);
  expect(third.headers['fhirmesh-error']).toBe('FHIRMESH_OVERLOADED');
  expect(third.headers['retry-after']).toBe('1');
  expect(JSON.parse(third.body)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'throttled' }] });
  // Only the two in flight reached the destination.
  expect(upstream.received.filter((r) => r.url.startsWith('/slow')).length).toBe(2);
  // Another destination is not held back by it.
  expect((await get('/fast/Patient/1')).status).toBe(200);

  // As the held requests finish, their slots come back.
  for (const res of held.splice(0)) {
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  }
  expect([(await first).status, (await second).status]).toEqual([200, 200]);
  upstream.setHandler((_req, res) => {
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  });
  expect((await get('/slow/Patient/4')).status).toBe(200);
});
