// The hostile-input corpus (test/hostile/corpus/*.yaml) against a real proxy over raw sockets:
// for every case the status (or close), that the destination saw exactly the requests it should
// at the paths it should, and that the proxy still serves the next client.

import type { Socket } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { hasFinalResponses, header, parseResponses, rawExchange, type RawResponse } from '../support/raw-http.ts';
import { startRecordingDestination, type RecordingDestination } from '../support/recording-destination.ts';
import { FOLLOW_UP_BODY, startScriptedDestination, type ScriptedDestination } from '../support/scripted-destination.ts';
import { type CorpusCase, loadCorpus } from './internal/corpus.ts';

const CORPUS = loadCorpus(path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus'));

let recording: RecordingDestination;
let scripted: ScriptedDestination;
let proxy: ProxyFixture;
let port: number;

beforeAll(async () => {
  recording = await startRecordingDestination();
  scripted = await startScriptedDestination();
  const timeouts = 'timeouts: { connect: 1s, firstByte: 1s, idle: 1s }';
  proxy = await startProxyFixture(
    routeYaml('acme', `destination: acme\naddressing: { header: true, pathSegment: true, hosts: [acme.example, fhir.acme.example] }\nallow: { methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS] }\nbackend: { url: ${recording.url}/r4 }\n${timeouts}`) +
      routeYaml('labs', `destination: labs\naddressing: { header: true, queryParameter: true }\nbackend: { url: ${recording.url}/labs }\n${timeouts}`) +
      routeYaml('open', `destination: open\naddressing: { pathSegment: true }\nallow: { encodedPathSeparators: true }\nbackend: { url: ${recording.url}/open }\n${timeouts}`) +
      routeYaml('small', `destination: small\naddressing: { pathSegment: true }\nallow: { methods: [GET, POST], maxRequestBodyBytes: 16 }\nbackend: { url: ${recording.url}/small }\n${timeouts}`) +
      routeYaml('raw', `destination: raw\naddressing: { pathSegment: true }\nbackend: { url: ${scripted.url}/raw }\n${timeouts}`),
    { limits: { headersTimeoutMs: 1_500, maxHeaderCount: 100, maxUrlBytes: 8192, maxHeaderBytes: 16384 } },
  );
  port = Number(new URL(proxy.url).port);
  for (const c of CORPUS) if (c.script !== undefined) scripted.script(c.scriptName, c.script);
});

afterAll(async () => {
  await proxy.stop();
  await recording.close();
  await scripted.close();
});

describe('the hostile-input corpus', () => {
  it('has at least 300 cases, each named once', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(300);
    const names = CORPUS.map((c) => `${c.file}: ${c.name}`);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  describe.each([...new Set(CORPUS.map((c) => c.file))])('%s', (file) => {
    it.each(CORPUS.filter((c) => c.file === file).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      await runCase(c);
    });
  });
});

async function runCase(c: CorpusCase): Promise<void> {
  recording.reset();
  const expected = c.expect;
  const bodiless = (i: number): boolean => i === 0 && c.head;
  // A case that expects the connection kept waits for its responses; one that expects a close
  // waits for the close, so a proxy that leaves it open fails here.
  const sentAt = performance.now();
  const exchange = await rawExchange(port, c.send, {
    ...(expected.closed === true ? {} : { until: hasFinalResponses(expected.statuses.length, bodiless) }),
    timeoutMs: c.timeoutMs ?? 4_000,
  });
  let responses: RawResponse[];
  try {
    responses = parseResponses(exchange.data, bodiless);
  } catch (err) {
    exchange.socket.destroy();
    throw new Error(`${(err as Error).message}; raw: ${JSON.stringify(exchange.data.toString('latin1').slice(0, 400))}`, { cause: err });
  }
  const finals = responses.filter((r) => r.status >= 200);
  if (expected.maxMs !== undefined) expect(exchange.firstDataMs - sentAt, 'time to the answer').toBeLessThan(expected.maxMs);
  const seen = { statuses: finals.map((r) => r.status), closed: exchange.closed, errors: finals.map((r) => header(r, 'fhirmesh-error') ?? null) };
  expect(seen.statuses, `statuses (errors ${JSON.stringify(seen.errors)})`).toEqual(expected.statuses);
  if (expected.error !== undefined) expect(seen.errors.at(-1)).toBe(expected.error);
  if (expected.closed !== undefined) expect(seen.closed, 'connection closed').toBe(expected.closed);
  if (expected.complete !== undefined) expect(finals.at(-1)?.complete, 'last response complete').toBe(expected.complete);
  if (expected.headerCount !== undefined) {
    const { name, count } = expected.headerCount;
    expect(finals.at(-1)?.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).length, `${name} fields`).toBe(count);
  }
  expected.bodies?.forEach((body, i) => {
    if (body !== null) expect(finals[i]?.body.toString('latin1')).toBe(body);
  });
  // Every intermediary error is an OperationOutcome that names its code.
  for (const r of finals) {
    const code = header(r, 'fhirmesh-error');
    // A HEAD answer has the headers and no body.
    if (code === undefined || !r.complete || (c.head && finals.length === 1)) continue;
    const outcome = JSON.parse(r.body.toString('utf8')) as { resourceType: string; issue: { details: { coding: { code: string }[] } }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]?.details.coding[0]?.code).toBe(code);
  }
  if (expected.closed === false && !exchange.closed) {
    // The connection is still good for another request.
    const again = await sendOn(exchange.socket, 'GET /acme/metadata HTTP/1.1\r\nHost: gw.example\r\n\r\n');
    expect(again, 'keep-alive connection still serves').toMatch(/^HTTP\/1\.1 200 /);
  }
  exchange.socket.destroy();

  if (c.side === 'client') {
    // The next client is served, and its request is the barrier after which nothing else arrives.
    const next = await rawExchange(port, [{ write: 'GET /acme/metadata HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n' }]);
    expect(parseResponses(next.data)[0]?.status, 'next client').toBe(200);
    const requests = recording.requests.filter((r) => !(r.url === '/r4/metadata' && r.method === 'GET'));
    if (expected.destination !== undefined) {
      expect(requests.map((r) => `${r.method} ${r.url}`), 'requests the destination saw').toEqual(expected.destination.map((d) => d.request));
      expected.destination.forEach((d, i) => expect(requests[i]?.body.toString('latin1'), `body of ${d.request}`).toBe(d.body ?? ''));
    }
    if (expected.destinationAny === true) {
      // A cut request may or may not have reached the destination's parser.
    } else if (expected.destinationCut === true) {
      // The cut reaches the destination as the early end of a request it never completed, or, when
      // nothing of it had been written yet, not at all: never as a whole request.
      await expect.poll(() => recording.parseErrors.length, { timeout: 300 }).toBeGreaterThan(0).catch(() => undefined);
      expect(recording.parseErrors.filter((e) => e !== 'HPE_INVALID_EOF_STATE'), 'destination parse errors').toEqual([]);
    } else {
      expect(recording.parseErrors, 'destination parse errors').toEqual([]);
    }
  } else {
    // A pooled upstream socket left with stray bytes would hand them to the next request.
    if (expected.settleMs !== undefined) await new Promise((resolve) => setTimeout(resolve, expected.settleMs));
    const follow = await rawExchange(port, [{ write: 'GET /raw/follow HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n' }]);
    const [answer] = parseResponses(follow.data);
    expect([answer?.status, answer?.body.toString('latin1')], 'follow-up through the same pool').toEqual([200, FOLLOW_UP_BODY]);
  }
}

function sendOn(socket: Socket, raw: string): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('latin1');
      if (hasFinalResponses(1)(Buffer.from(data, 'latin1'))) done();
    };
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(data);
    };
    const timer = setTimeout(done, 2_000);
    socket.on('data', onData);
    socket.write(raw);
  });
}
