// `retries: {attempts: 2, retryOn: [...]}` sends a failed request again only when that is safe: an
// idempotent method with no body, a listed failure, at most `attempts` more times, and never once
// any byte of the response has reached the originator. The destination counts every attempt.

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../support/metrics.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { freePort } from '../support/spawn-controller.ts';
import { rawHeaderValues, startUpstream, type ReceivedRequest, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let resetting: TestUpstream;
let silent: TestUpstream;
let lateOpenPort: number;
let closedPort: number;
let proxy: ProxyFixture;

const attemptsByPath = new Map<string, number>();
/** Set by a test: called once the destination has sent its 503, to make the originator leave. */
let onAnswered: (() => void) | undefined;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    const path = (req.url ?? '').replace(/^\/fhir/, '');
    const attempt = (attemptsByPath.get(`${req.method} ${path}`) ?? 0) + 1;
    attemptsByPath.set(`${req.method} ${path}`, attempt);
    const reply = (status: number, text: string): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
      res.end(text, () => onAnswered?.());
    };
    if (path.startsWith('/Patient/flaky')) reply(attempt === 1 ? 503 : 200, `attempt ${attempt}`);
    else if (path.startsWith('/Patient/bad-gateway')) reply(502, `attempt ${attempt}`);
    else if (path.startsWith('/Patient/partial')) {
      // Headers and some of the body, then the connection dies.
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': '1000' });
      res.write('{"resourceType":"Patient"', () => setTimeout(() => res.socket?.destroy(), 20));
    } else reply(503, `attempt ${attempt}`);
  });
  // Every request's connection is cut before any answer: a `reset` failure.
  resetting = await startUpstream((req) => req.socket.destroy());
  // Takes requests and never answers.
  silent = await startUpstream(() => undefined);
  closedPort = await freePort();
  lateOpenPort = await freePort();
  proxy = await startProxyFixture(
    routeYaml(
      'retry',
      `destination: retry\naddressing: { header: true }\nbackend: { url: ${upstream.url}/fhir }\nretries: { attempts: 2, retryOn: [unavailable, connect-failure] }`,
    ) +
      routeYaml(
        'retry-reset',
        `destination: retry-reset\naddressing: { header: true }\nbackend: { url: ${upstream.url}/fhir }\nretries: { attempts: 2, retryOn: [reset, unavailable] }`,
      ) +
      routeYaml(
        'resetting',
        `destination: resetting\naddressing: { header: true }\nbackend: { url: ${resetting.url}/fhir }\nretries: { attempts: 2, retryOn: [reset] }`,
      ) +
      routeYaml(
        'silent',
        `destination: silent\naddressing: { header: true }\nbackend: { url: ${silent.url}/fhir }\nretries: { attempts: 2, retryOn: [reset, unavailable] }`,
      ) +
      routeYaml(
        'refused',
        `destination: refused\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }\nretries: { attempts: 2, retryOn: [connect-failure] }`,
      ) +
      routeYaml(
        'late',
        `destination: late\naddressing: { header: true }\nbackend: { url: http://127.0.0.1:${lateOpenPort}/fhir }\nretries: { attempts: 2, retryOn: [connect-failure] }`,
      ),
  );
});

afterAll(async () => {
  await proxy.stop();
  await upstream.close();
  await resetting.close();
  await silent.close();
});

interface Reply {
  status: number;
  rawHeaders: string[];
  body: string;
}

function send(destination: string, method: string, path: string, body?: string): Promise<Reply> {
  const url = new URL(proxy.url);
  const headers: Record<string, string> = { 'X-Destination': destination };
  if (body !== undefined) headers['Content-Type'] = 'application/fhir+json';
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function requestsInFlight(): Promise<number | undefined> {
  return metricValue(proxy.adminUrl, 'fhirmesh_proxy_requests_in_flight');
}

/**
 * Requests to `destination` the proxy has finished with, retries and all: once this counts one
 * more, that request's attempts are over and what the destination saw is final.
 */
async function finished(destination: string): Promise<number> {
  return (await metricValue(proxy.adminUrl, 'fhirmesh_proxy_requests_total', { destination })) ?? 0;
}

function receivedFor(server: TestUpstream, method: string, path: string): ReceivedRequest[] {
  return server.received.filter((r) => r.method === method && r.url === `/fhir${path}`);
}

describe('retried', () => {
  it('retries a GET answered 503 (unavailable) and returns the 200 of the second attempt', async () => {
    const reply = await send('retry', 'GET', '/Patient/flaky-1');
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('attempt 2');
    const attempts = receivedFor(upstream, 'GET', '/Patient/flaky-1');
    expect(attempts).toHaveLength(2);
    // The retry is the same request: same headers, one Via of ours, not two.
    expect(attempts[1]?.rawHeaders).toEqual(attempts[0]?.rawHeaders);
    expect(rawHeaderValues(attempts[1]?.rawHeaders ?? [], 'via')).toEqual(['1.1 gw-test']);
  });

  it('retries a DELETE without a body (idempotent) on 503', async () => {
    const reply = await send('retry', 'DELETE', '/Patient/flaky-2');
    expect(reply.status).toBe(200);
    expect(receivedFor(upstream, 'DELETE', '/Patient/flaky-2')).toHaveLength(2);
  });

  it('stops after `attempts` retries and passes the last 503 back unchanged', async () => {
    const reply = await send('retry', 'GET', '/Patient/down-1');
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('attempt 3');
    expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-error')).toEqual([]);
    expect(receivedFor(upstream, 'GET', '/Patient/down-1')).toHaveLength(3);
  });

  it('retries a reset before any answer when `reset` is listed, then answers 502', async () => {
    const before = resetting.received.length;
    const reply = await send('resetting', 'GET', '/Patient/p1');
    expect(reply.status).toBe(502);
    expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-error')).toEqual(['FHIRMESH_UPSTREAM_RESET']);
    expect(resetting.received.length - before).toBe(3);
  });

  it('retries a refused connection and reaches a backend that has come up meanwhile', async () => {
    let reached = 0;
    const late = http.createServer((_req, res) => {
      reached++;
      res.writeHead(200, { 'Content-Length': '4' });
      res.end('late');
    });
    try {
      const sentAt = performance.now();
      const pending = send('late', 'GET', '/Patient/p1');
      // In flight: its first attempt is refused at once (loopback answers a SYN to a closed port
      // with a RST); the retries come 25 ms and 75 ms later.
      await expect.poll(requestsInFlight, { interval: 5 }).toBe(1);
      await new Promise<void>((resolve) => late.listen(lateOpenPort, '127.0.0.1', resolve));
      const reply = await pending;
      expect(reply.status).toBe(200);
      expect(reply.body).toBe('late');
      // One attempt reached it, after at least the first backoff: a retry, not a lucky first try.
      expect(reached).toBe(1);
      expect(performance.now() - sentAt).toBeGreaterThanOrEqual(25);
    } finally {
      late.closeAllConnections();
      await new Promise<void>((resolve) => late.close(() => resolve()));
    }
  });

  it('waits between attempts on a refused connection and then answers 502', async () => {
    const started = performance.now();
    const reply = await send('refused', 'GET', '/Patient/p1');
    expect(reply.status).toBe(502);
    expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-error')).toEqual(['FHIRMESH_UPSTREAM_REFUSED']);
    // Two backoffs, 25 ms then 50 ms: only a retried request takes this long against a closed port.
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
  });
});

describe('not retried', () => {
  it('does not retry a POST', async () => {
    const reply = await send('retry', 'POST', '/Patient', '{"resourceType":"Patient"}');
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('attempt 1');
    expect(receivedFor(upstream, 'POST', '/Patient')).toHaveLength(1);
  });

  it('does not retry a PUT that has a body, idempotent or not', async () => {
    const reply = await send('retry', 'PUT', '/Patient/flaky-3', '{"resourceType":"Patient","id":"flaky-3"}');
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('attempt 1');
    expect(receivedFor(upstream, 'PUT', '/Patient/flaky-3')).toHaveLength(1);
  });

  it('does not retry a 502 when the route lists only unavailable (503)', async () => {
    const reply = await send('retry', 'GET', '/Patient/bad-gateway');
    expect(reply.status).toBe(502);
    expect(rawHeaderValues(reply.rawHeaders, 'fhirmesh-error')).toEqual([]);
    expect(receivedFor(upstream, 'GET', '/Patient/bad-gateway')).toHaveLength(1);
  });

  it('does not retry, and holds nothing, once the originator has gone', async () => {
    const url = new URL(proxy.url);
    const req = http.request({ host: url.hostname, port: url.port, path: '/Patient/abandoned', headers: { 'X-Destination': 'silent' }, agent: false });
    req.on('error', () => undefined);
    const before = await finished('silent');
    req.end();
    await expect.poll(() => receivedFor(silent, 'GET', '/Patient/abandoned').length, { timeout: 2_000, interval: 10 }).toBe(1);
    // The originator gives up while the destination is still thinking.
    req.destroy();
    // Finished means no attempt is left to come: the destination saw the one it got, and nothing is held.
    await expect.poll(() => finished('silent'), { timeout: 2_000 }).toBe(before + 1);
    expect(receivedFor(silent, 'GET', '/Patient/abandoned')).toHaveLength(1);
    expect(await requestsInFlight()).toBe(0);
  });

  it('does not start another attempt when the originator leaves while a 503 is being retried', async () => {
    const url = new URL(proxy.url);
    const req = http.request({ host: url.hostname, port: url.port, path: '/Patient/abandoned-in-backoff', headers: { 'X-Destination': 'retry' }, agent: false });
    req.on('error', () => undefined);
    // The proxy is now waiting to retry (or still reading the 503): either way the originator is gone.
    onAnswered = () => req.destroy();
    const before = await finished('retry');
    try {
      req.end();
      // Left alone, this 503 is retried twice (see "stops after `attempts` retries"); finished
      // means the proxy is done with it, so the count below is every attempt there was.
      await expect.poll(() => finished('retry'), { timeout: 2_000 }).toBe(before + 1);
    } finally {
      onAnswered = undefined;
    }
    expect(receivedFor(upstream, 'GET', '/Patient/abandoned-in-backoff')).toHaveLength(1);
    expect(await requestsInFlight()).toBe(0);
  });

  it('does not retry once response bytes have been relayed, even when `reset` is listed', async () => {
    const url = new URL(proxy.url);
    const outcome = await new Promise<{ status: number; bytes: string; error: string }>((resolve) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: '/Patient/partial', headers: { 'X-Destination': 'retry-reset' }, agent: false },
        (res) => {
          let bytes = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (bytes += c));
          res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: res.statusCode ?? 0, bytes, error: err.code ?? err.message }));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, error: 'none' }));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, bytes: '', error: err.code ?? err.message }));
      req.end();
    });
    expect(outcome).toEqual({ status: 200, bytes: '{"resourceType":"Patient"', error: 'ECONNRESET' });
    expect(receivedFor(upstream, 'GET', '/Patient/partial')).toHaveLength(1);
  });
});
