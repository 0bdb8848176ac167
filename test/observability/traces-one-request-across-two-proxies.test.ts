// Traces read back from a real Jaeger: one request through gw-a → gw-b → destination is one trace,
// with a server span per hop and a client span per upstream attempt, parented across both hops, the
// destination receiving the last client span as its parent; retries, intermediary errors and rules
// show as attributes; the controller's compile spans are linked from the pushes they caused.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Jaeger, type JaegerSpan, type JaegerTrace, parentOf, startJaeger, tag } from './support/jaeger.ts';
import { type Mesh, startMesh, tracingEnv } from './support/mesh.ts';
import { observabilityTools } from './support/tools.ts';

let dir: string;
let jaeger: Jaeger;
let mesh: Mesh;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-traces-'));
  jaeger = await startJaeger(observabilityTools().jaeger, dir);
  mesh = await startMesh(dir, {
    // Proxies over OTLP/HTTP (protobuf), the controller over OTLP/gRPC: both protocols, one Jaeger.
    env: tracingEnv(jaeger.otlpHttpUrl),
    controllerEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpGrpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
  });
});

afterAll(async () => {
  await mesh?.stop();
  await jaeger?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const randomHex = (bytes: number): string => Buffer.from(Array.from({ length: bytes }, () => Math.floor(Math.random() * 256))).toString('hex');

/** Waits until Jaeger holds `count` spans of the trace, then returns it. */
async function traceWith(traceId: string, count: number): Promise<JaegerTrace> {
  let trace: JaegerTrace | undefined;
  await expect.poll(async () => (trace = await jaeger.trace(traceId))?.spans.length ?? 0, { timeout: 20_000, interval: 200 }).toBeGreaterThanOrEqual(count);
  if (trace === undefined) throw new Error('unreachable');
  return trace;
}

function hopOf(trace: JaegerTrace, span: JaegerSpan): unknown {
  return trace.processes[span.processID]?.tags.find((t) => t.key === 'service.instance.id')?.value;
}

function spansOf(trace: JaegerTrace, hop: string, kind: 'server' | 'client'): JaegerSpan[] {
  return trace.spans.filter((s) => hopOf(trace, s) === hop && tag(s, 'span.kind') === kind).sort((a, b) => a.startTime - b.startTime);
}

function only(spans: JaegerSpan[]): JaegerSpan {
  expect(spans).toHaveLength(1);
  return spans[0] as JaegerSpan;
}

describe('a request through two proxies', () => {
  it('is one trace continuing the originator’s: gw-a server → gw-a client → gw-b server → gw-b client → the destination', async () => {
    const traceId = randomHex(16);
    const originatorSpan = randomHex(8);
    const res = await fetch(`${mesh.base('acme')}/Patient/123`, {
      headers: { accept: 'application/fhir+json', traceparent: `00-${traceId}-${originatorSpan}-01`, tracestate: 'originator=abc' },
    });
    expect(res.status).toBe(200);
    const trace = await traceWith(traceId, 4);
    expect(trace.spans).toHaveLength(4);
    const aServer = only(spansOf(trace, 'gw-a', 'server'));
    const aClient = only(spansOf(trace, 'gw-a', 'client'));
    const bServer = only(spansOf(trace, 'gw-b', 'server'));
    const bClient = only(spansOf(trace, 'gw-b', 'client'));
    expect(parentOf(aServer)).toBe(originatorSpan);
    expect(parentOf(aClient)).toBe(aServer.spanID);
    expect(parentOf(bServer)).toBe(aClient.spanID);
    expect(parentOf(bClient)).toBe(bServer.spanID);

    // What the destination received names gw-b's client span, and the originator's tracestate went along.
    const received = mesh.destination.received.at(-1);
    expect(received?.url).toBe('/fhir/Patient/123');
    expect(received?.headers.traceparent).toBe(`00-${traceId}-${bClient.spanID}-01`);
    expect(received?.headers.tracestate).toBe('originator=abc');

    for (const [span, destination] of [
      [aServer, 'acme'],
      [bServer, 'acme-b'],
    ] as const) {
      expect(span.operationName).toBe('GET Patient/{id}');
      expect(tag(span, 'http.request.method')).toBe('GET');
      expect(tag(span, 'http.route')).toBe('Patient/{id}');
      expect(tag(span, 'http.response.status_code')).toBe(200);
      expect(tag(span, 'fhir.destination')).toBe(destination);
      expect(tag(span, 'fhir.interaction')).toBe('read');
      expect(tag(span, 'fhir.resource_type')).toBe('Patient');
      expect(tag(span, 'fhirmesh.rule')).toBe('(default)');
      expect(tag(span, 'fhirmesh.error_origin')).toBeUndefined();
    }
    for (const span of [aClient, bClient]) {
      expect(tag(span, 'url.template')).toBe('Patient/{id}');
      expect(tag(span, 'server.address')).toBe('127.0.0.1');
      expect(typeof tag(span, 'server.port')).toBe('number');
      expect(tag(span, 'http.response.status_code')).toBe(200);
    }
    expect(tag(bClient, 'server.port')).toBe(mesh.destination.port);
    // Never the path or the query: the URL attributes are the route template.
    for (const span of trace.spans) for (const key of ['url.path', 'url.query', 'url.full', 'http.target', 'http.url']) expect(tag(span, key)).toBeUndefined();
    expect(trace.processes[aServer.processID]?.serviceName).toBe('fhirmesh-proxy');
  });

  it('starts a trace at gw-a when the originator sends none, and still propagates it to the destination', async () => {
    const res = await fetch(`${mesh.base('acme')}/Patient?family=x`, { headers: { accept: 'application/fhir+json' } });
    expect(res.status).toBe(200);
    const received = mesh.destination.received.at(-1);
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(received?.headers.traceparent));
    expect(match).not.toBeNull();
    const trace = await traceWith(match?.[1] ?? '', 4);
    const aServer = only(spansOf(trace, 'gw-a', 'server'));
    expect(parentOf(aServer)).toBeUndefined();
    expect(aServer.operationName).toBe('GET Patient');
    expect(tag(aServer, 'fhir.interaction')).toBe('search-type');
    expect(only(spansOf(trace, 'gw-b', 'client')).spanID).toBe(match?.[2]);
  });

  it('shows each upstream attempt as its own client span: a 503 retried once, then passed back', async () => {
    const traceId = randomHex(16);
    const res = await fetch(`${mesh.base('flaky')}/Patient/1`, { headers: { traceparent: `00-${traceId}-${randomHex(8)}-01` } });
    expect(res.status).toBe(503);
    const trace = await traceWith(traceId, 5);
    const attempts = spansOf(trace, 'gw-b', 'client');
    expect(attempts).toHaveLength(2);
    const [first, second] = attempts as [JaegerSpan, JaegerSpan];
    expect(tag(first, 'http.response.status_code')).toBe(503);
    expect(tag(first, 'fhirmesh.retried_for')).toBe('unavailable');
    expect(tag(first, 'http.request.resend_count')).toBeUndefined();
    expect(tag(second, 'http.request.resend_count')).toBe(1);
    expect(tag(second, 'fhirmesh.retry_reason')).toBe('unavailable');
    const bServer = only(spansOf(trace, 'gw-b', 'server'));
    for (const attempt of attempts) expect(parentOf(attempt)).toBe(bServer.spanID);
    expect(tag(bServer, 'error.type')).toBe('503');
    expect(tag(bServer, 'otel.status_code')).toBe('ERROR');
    // The destination's error, not the intermediaries': origin destination at both hops.
    expect(tag(bServer, 'fhirmesh.error_origin')).toBe('destination');
    expect(tag(only(spansOf(trace, 'gw-a', 'server')), 'fhirmesh.error_origin')).toBe('destination');
    expect(tag(bServer, 'fhirmesh.error_code')).toBeUndefined();
  });

  it('records an intermediary error on the span: code, origin, status and the OperationOutcome’s text', async () => {
    const traceId = randomHex(16);
    const res = await fetch(`${mesh.base('down')}/Patient/1`, { headers: { traceparent: `00-${traceId}-${randomHex(8)}-01` } });
    expect(res.status).toBe(502);
    expect(res.headers.get('fhirmesh-error')).toBe('FHIRMESH_UPSTREAM_REFUSED');
    const trace = await traceWith(traceId, 2);
    const server = only(spansOf(trace, 'gw-a', 'server'));
    expect(tag(server, 'fhirmesh.error_code')).toBe('FHIRMESH_UPSTREAM_REFUSED');
    expect(tag(server, 'fhirmesh.error_origin')).toBe('intermediary');
    expect(tag(server, 'error.type')).toBe('FHIRMESH_UPSTREAM_REFUSED');
    expect(tag(server, 'otel.status_code')).toBe('ERROR');
    expect(tag(server, 'http.response.status_code')).toBe(502);
    const exception = server.logs.find((l) => l.fields.some((f) => f.key === 'event' && f.value === 'exception'));
    expect(exception?.fields.find((f) => f.key === 'exception.type')?.value).toBe('FHIRMESH_UPSTREAM_REFUSED');
    const client = only(spansOf(trace, 'gw-a', 'client'));
    expect(tag(client, 'fhirmesh.error_code')).toBe('FHIRMESH_UPSTREAM_REFUSED');
  });

  it('names the delegation rule that served a request, at the hop that applied it', async () => {
    const traceId = randomHex(16);
    const res = await fetch(`${mesh.base('acme')}/ServiceRequest`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', traceparent: `00-${traceId}-${randomHex(8)}-01` },
      body: JSON.stringify({ resourceType: 'ServiceRequest', status: 'active', intent: 'order' }),
    });
    expect(res.status).toBe(201);
    const trace = await traceWith(traceId, 4);
    expect(tag(only(spansOf(trace, 'gw-b', 'server')), 'fhirmesh.rule')).toBe('lab-orders');
    expect(tag(only(spansOf(trace, 'gw-a', 'server')), 'fhirmesh.rule')).toBe('(default)');
    expect(tag(only(spansOf(trace, 'gw-b', 'client')), 'server.port')).toBe(mesh.labs.port);
    expect(mesh.labs.received.at(-1)?.headers.traceparent).toContain(traceId);
  });
});

describe('the controller', () => {
  it('traces each compile, and links the pushes it caused to it, each ending in the proxy’s ACK', async () => {
    // A change: the route file rewritten with one more route.
    const routes = path.join(dir, 'routes', 'extra.yaml');
    fs.writeFileSync(
      routes,
      `apiVersion: fhirmesh.io/v1alpha1\nkind: FhirRoute\nmetadata: { name: extra, namespace: default }\nspec:\n  destination: extra\n  addressing: { header: true }\n  backend: { url: ${mesh.destination.url}/fhir }\n`,
    );
    let compile: JaegerSpan | undefined;
    let pushes: JaegerSpan[] = [];
    await expect
      .poll(
        async () => {
          const traces = await jaeger.traces('fhirmesh-controller');
          const spans = traces.flatMap((t) => t.spans);
          compile = spans.filter((s) => s.operationName === 'fhirmesh.compile' && tag(s, 'fhirmesh.trigger') === 'change').sort((a, b) => b.startTime - a.startTime)[0];
          pushes = spans.filter((s) => s.operationName === 'fhirmesh.push' && s.references.some((r) => r.spanID === compile?.spanID));
          return pushes.length;
        },
        { timeout: 20_000, interval: 250 },
      )
      .toBe(2);
    expect(tag(compile as JaegerSpan, 'fhirmesh.routes')).toBe(6);
    expect(pushes.map((p) => tag(p, 'fhirmesh.node_id')).sort()).toEqual(['gw-a', 'gw-b']);
    for (const push of pushes) {
      expect(tag(push, 'fhirmesh.outcome')).toBe('ack');
      expect(tag(push, 'fhirmesh.response_kind')).toBe('delta');
      // A link, not a parent: the push is its own root, caused by the change.
      expect(push.references.find((r) => r.spanID === compile?.spanID)?.refType).toBe('FOLLOWS_FROM');
      expect(push.traceID).not.toBe(compile?.traceID);
    }
    const all = (await jaeger.traces('fhirmesh-controller')).flatMap((t) => t.spans);
    const reconcile = all.find((s) => s.operationName === 'fhirmesh.status.reconcile' && s.references.some((r) => r.spanID === compile?.spanID));
    expect(reconcile).toBeDefined();
  });
});
