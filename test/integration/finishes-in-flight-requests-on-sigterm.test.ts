// SIGTERM drains the real proxy process: a request in flight still gets its 200 and whole body,
// new connections are refused at once, and the process exits 0; with --shutdown-grace 1 a request
// that would never finish is cut after about a second and the process still exits 0.

import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { makeRoutesDir, spawnProxy, type RoutesDir, type SpawnedProxy } from '../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

const SLOW_ANSWER_MS = 1_500;
/** 1 MiB of varied bytes, so a truncated or reordered body cannot pass for the real one. */
const SLOW_BODY = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + (i >> 10)) & 0xff));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let slow: TestUpstream;
let silent: TestUpstream;
let fast: TestUpstream;
let routes: RoutesDir;
let proxy: SpawnedProxy | undefined;

beforeAll(async () => {
  slow = await startUpstream((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': SLOW_BODY.length });
      res.end(SLOW_BODY);
    }, SLOW_ANSWER_MS);
  });
  silent = await startUpstream(() => undefined);
  fast = await startUpstream();
  const route = (name: string, upstream: TestUpstream): string =>
    routeYaml(name, `
destination: ${name}
addressing:
  header: true
backend:
  url: ${upstream.url}/fhir`);
  routes = makeRoutesDir(route('slow', slow) + route('silent', silent) + route('fast', fast));
});

afterEach(async () => {
  await proxy?.kill();
  proxy = undefined;
});

afterAll(async () => {
  await slow.close();
  await silent.close();
  await fast.close();
  routes.remove();
});

interface Answer {
  status: number;
  body: Buffer;
  finishedAt: number;
}

/** A GET through the proxy on `agent`; resolves with the whole body, rejects on a network error. */
function get(proxyUrl: string, destination: string, agent: http.Agent | false): Promise<Answer> {
  const url = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: '/Patient/p1', agent, headers: { 'X-Destination': destination } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), finishedAt: performance.now() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('SIGTERM', () => {
  it('lets a request in flight finish with its whole body, refuses new connections, and exits 0', async () => {
    const running = await spawnProxy({ routesFile: routes.file });
    proxy = running;
    // An idle keep-alive connection from an earlier request must not hold the shutdown up.
    const keepAlive = new http.Agent({ keepAlive: true });
    expect((await get(running.url, 'fast', keepAlive)).status).toBe(200);

    const slowSeen = slow.received.length;
    const inFlight = get(running.url, 'slow', new http.Agent({ keepAlive: true }));
    // Awaited below; this only keeps an early assertion failure from leaving it unhandled.
    inFlight.catch(() => undefined);
    await expect.poll(() => slow.received.length, { timeout: 5_000, interval: 10 }).toBeGreaterThan(slowSeen);
    running.signal('SIGTERM');
    await running.waitForLog((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM');

    // The line is written just before the listener closes; the admin answer comes after it has.
    const ready = await fetch(`${running.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/draining/);
    const refused = await get(running.url, 'fast', false).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).toBe('ECONNREFUSED');

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(SLOW_BODY.length);
    expect(sha256(answer.body)).toBe(sha256(SLOW_BODY));

    const exit = await running.waitForExit(5_000);
    const exitedAfterAnswerMs = performance.now() - answer.finishedAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitedAfterAnswerMs).toBeLessThan(1_000);
    expect(running.logs.find((l) => l.msg === 'proxy stopped')).toMatchObject({ cutRequests: 0 });
    keepAlive.destroy();
  });

  it('with --shutdown-grace 1, cuts a request that never finishes after about a second and exits 0', async () => {
    const running = await spawnProxy({ routesFile: routes.file, args: ['--shutdown-grace', '1'] });
    proxy = running;
    const silentSeen = silent.received.length;
    const stuck = get(running.url, 'silent', false).then(
      (answer) => `answered ${answer.status}`,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    await expect.poll(() => silent.received.length, { timeout: 5_000, interval: 10 }).toBeGreaterThan(silentSeen);

    const signalledAt = performance.now();
    running.signal('SIGTERM');
    const exit = await running.waitForExit(5_000);
    const tookMs = performance.now() - signalledAt;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeGreaterThanOrEqual(950);
    expect(tookMs).toBeLessThan(2_500);
    // The originator sees the connection cut, never a made-up status.
    expect(await stuck).toMatch(/ECONNRESET|socket hang up/);
    expect(running.logs.find((l) => l.msg === 'proxy stopped')).toMatchObject({ cutRequests: 1 });
  });
});
