// PHI hygiene, tested end to end: requests whose paths, ids, query strings, bodies, Authorization and
// cookies carry canary values go through gw-a → gw-b with tracing at 100 % and access lines that ask
// for the Authorization and Cookie headers; then everything the mesh emitted is collected (logs of all
// three processes, /metrics, the spans as Jaeger stores them, the /debug pages, every OperationOutcome
// body) and no canary appears anywhere in it.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Jaeger, startJaeger } from './support/jaeger.ts';
import { type Mesh, startMesh, tracingEnv } from './support/mesh.ts';
import { observabilityTools } from './support/tools.ts';

let dir: string;
let jaeger: Jaeger;
let mesh: Mesh;

const hex = (bytes: number): string => crypto.randomBytes(bytes).toString('hex');
const letters = (n: number): string => Array.from(crypto.randomBytes(n), (b) => String.fromCharCode(97 + (b % 26))).join('');

/** Every canary: distinct, unmistakable, and valid where it is put (ids, DNS labels, tokens, words). */
const canary = {
  patientId: `cnryid${hex(6)}`,
  versionId: `cnryvid${hex(4)}`,
  queryName: `cnryname${hex(6)}`,
  queryDate: `cnrydate${hex(6)}`,
  body: `cnrybody${hex(6)}`,
  token: `cnrytoken${hex(12)}`,
  cookie: `cnrycookie${hex(8)}`,
  // A word where a resource type goes (a name sent by mistake), and a destination nobody declares.
  typeWord: `Cnry${letters(8)}`,
  destination: `cnrydest${hex(4)}`,
  // Inside a malformed path and a malformed X-Destination, which are refused.
  malformed: `cnrybad${hex(6)}`,
};
const canaries = Object.values(canary);

const outcomes: string[] = [];
let requestsSent = 0;

async function send(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${canary.token}`);
  headers.set('cookie', `session=${canary.cookie}; theme=dark`);
  headers.set('x-request-id', `req-${requestsSent}`);
  headers.set('traceparent', `00-${hex(16)}-${hex(8)}-01`);
  requestsSent++;
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  if (res.headers.get('fhirmesh-error') !== null) outcomes.push(text);
  return new Response(text, { status: res.status, headers: res.headers });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-phi-'));
  jaeger = await startJaeger(observabilityTools().jaeger, dir);
  mesh = await startMesh(dir, {
    env: tracingEnv(jaeger.otlpHttpUrl, { OTEL_TRACES_SAMPLER: 'always_on' }),
    // Asked for on purpose: credentials among them must still be written as [REDACTED].
    proxyArgs: ['--log-headers', 'authorization,cookie,x-request-id', '--log-level', 'debug'],
  });
});

afterAll(async () => {
  await mesh?.stop();
  await jaeger?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('with canaries in paths, ids, queries, bodies, Authorization and cookies', () => {
  it('sends them through both proxies to the destinations (so finding none below means something)', async () => {
    const acme = mesh.base('acme');
    const json = { 'content-type': 'application/fhir+json' };
    const patient = JSON.stringify({ resourceType: 'Patient', id: canary.patientId, name: [{ family: canary.body }] });
    const expectations: [Promise<Response>, number][] = [
      [send(`${acme}/Patient/${canary.patientId}?name=${canary.queryName}&birthdate=${canary.queryDate}`), 200],
      [send(`${acme}/Patient/${canary.patientId}/_history/${canary.versionId}`), 200],
      [send(`${acme}/Patient/${canary.patientId}/$everything?_since=${canary.queryDate}`), 200],
      [send(`${acme}/Patient/${canary.patientId}/Observation?code=${canary.queryName}`), 200],
      [send(`${acme}/Patient`, { method: 'POST', headers: json, body: patient }), 201],
      [send(`${acme}/Patient/${canary.patientId}`, { method: 'PUT', headers: json, body: patient }), 200],
      [send(`${acme}/ServiceRequest`, { method: 'POST', headers: json, body: JSON.stringify({ resourceType: 'ServiceRequest', note: [{ text: canary.body }] }) }), 201],
      [send(`${acme}/${canary.typeWord}/${canary.patientId}`), 200],
      [send(`${mesh.gwA.url}/${canary.destination}/Patient/${canary.patientId}?name=${canary.queryName}`), 404],
      [send(`${mesh.base('down')}/Patient/${canary.patientId}?name=${canary.queryName}`), 502],
      [send(`${mesh.base('flaky')}/Patient/${canary.patientId}?name=${canary.queryName}`), 503],
      [send(`${acme}/Patient/${canary.malformed}%zz?name=${canary.queryName}`), 400],
      [send(`${acme}/Patient/${canary.patientId}`, { headers: { 'x-destination': `${canary.malformed}_NOT_A_LABEL` } }), 400],
      [send(`${acme}/Patient/${canary.patientId}`, { method: 'OPTIONS' }), 405],
    ];
    for (const [response, status] of expectations) expect((await response).status).toBe(status);
    const reached = JSON.stringify([...mesh.destination.received, ...mesh.labs.received, ...mesh.failing.received].map((r) => [r.url, r.headers, r.body.toString()]));
    for (const value of [canary.patientId, canary.queryName, canary.body, canary.token, canary.cookie, canary.typeWord]) expect(reached).toContain(value);
    expect(outcomes.length).toBeGreaterThanOrEqual(5);
  });

  it('finds none of them in logs, /metrics, Jaeger, /debug pages or OperationOutcomes', async () => {
    // Every request's spans are in Jaeger (server and client spans of both hops for most).
    await expect
      .poll(async () => (await jaeger.traces('fhirmesh-proxy')).reduce((n, t) => n + t.spans.length, 0), { timeout: 20_000, interval: 250 })
      .toBeGreaterThanOrEqual(requestsSent * 2);
    const scraped = await Promise.all(
      [`${mesh.gwA.adminUrl}/metrics`, `${mesh.gwB.adminUrl}/metrics`, `${mesh.controller.adminUrl}/metrics`, `${mesh.gwA.adminUrl}/debug/routes`, `${mesh.gwB.adminUrl}/debug/routes`, `${mesh.controller.adminUrl}/debug/status`].map(
        async (url) => (await fetch(url)).text(),
      ),
    );
    // Stopping flushes the last spans and log lines.
    await mesh.stop();
    const emitted = {
      logs: JSON.stringify([mesh.gwA.logs, mesh.gwB.logs, mesh.controller.logs]) + mesh.gwA.stderrText() + mesh.gwB.stderrText(),
      metricsAndDebug: scraped.join('\n'),
      spans: (await jaeger.tracesText('fhirmesh-proxy')) + (await jaeger.tracesText('fhirmesh-controller')),
      outcomes: outcomes.join('\n'),
    };

    // What was collected is the real thing: access lines per request, redacted credentials, spans, metrics.
    const access = [...mesh.gwA.logs, ...mesh.gwB.logs].filter((l) => l.msg === 'access');
    expect(access.length).toBeGreaterThanOrEqual(requestsSent);
    expect(access.every((l) => (l.headers as Record<string, string>).authorization === '[REDACTED]' && (l.headers as Record<string, string>).cookie === '[REDACTED]')).toBe(true);
    expect(access.some((l) => (l.headers as Record<string, string>)['x-request-id'] === 'req-0')).toBe(true);
    expect(emitted.spans).toContain('"http.route"');
    expect(emitted.metricsAndDebug).toContain('fhirmesh_proxy_requests_total{');
    expect(emitted.logs).toContain('Patient/{id}/_history/{vid}');
    expect(emitted.logs).toContain('{type}/{id}');

    for (const [where, text] of Object.entries(emitted)) {
      for (const value of canaries) {
        expect(text.includes(value), `${value} found in ${where}`).toBe(false);
        expect(text.includes(encodeURIComponent(value)), `${value} (encoded) found in ${where}`).toBe(false);
      }
    }
  });
});
