// Trace context through one proxy, in process, spans on an in-memory exporter: tracing off, the
// originator's traceparent/tracestate reach the destination untouched and access lines carry its
// trace id; tracing on, the destination gets the attempt's client span as parent, each retry is a
// client span of its own, and the server span continues the originator's trace.
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOtelRequestTracer } from '../../proxy/src/telemetry/internal/otel-request-tracer.ts';
import { startTracing, tracingSettings, type LogLevel } from '../../runtime/index.ts';
import { createLogger } from '../../runtime/index.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT}-01`;

let destination: TestUpstream;
let flaky: TestUpstream;
let untraced: ProxyFixture;
let traced: ProxyFixture;
let unsampled: ProxyFixture;
let exporter: InMemorySpanExporter;
let unsampledExporter: InMemorySpanExporter;
const accessLines: Record<string, unknown>[] = [];
let flakyCalls = 0;

const routes = (): string =>
  routeYaml('acme', `destination: acme\naddressing: { pathSegment: true }\nbackend: { url: ${destination.url}/fhir }`) +
  routeYaml('flaky', `destination: flaky\naddressing: { pathSegment: true }\nbackend: { url: ${flaky.url}/fhir }\nretries: { attempts: 1, retryOn: [unavailable] }`);

beforeAll(async () => {
  destination = await startUpstream();
  // 503 first, then 200: one retry.
  flaky = await startUpstream((_req, res) => {
    flakyCalls++;
    res.writeHead(flakyCalls % 2 === 1 ? 503 : 200, { 'Content-Length': 0 });
    res.end();
  });
  untraced = await startProxyFixture(routes(), {
    intermediaryId: 'gw-off',
    logger: createLogger({ component: 'proxy', write: (line: string, _level: LogLevel) => accessLines.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  exporter = new InMemorySpanExporter();
  const settings = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_BSP_SCHEDULE_DELAY: '10' });
  if (settings === undefined) throw new Error('tracing settings expected');
  const tracing = await startTracing(settings, { serviceName: 'fhirmesh-proxy', serviceVersion: 'test', instanceId: 'gw-on' }, { exporter });
  traced = await startProxyFixture(routes(), { intermediaryId: 'gw-on', tracer: createOtelRequestTracer(tracing) });
  unsampledExporter = new InMemorySpanExporter();
  const offSettings = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_BSP_SCHEDULE_DELAY: '10', OTEL_TRACES_SAMPLER: 'always_off' });
  if (offSettings === undefined) throw new Error('tracing settings expected');
  const dropping = await startTracing(offSettings, { serviceName: 'fhirmesh-proxy', serviceVersion: 'test', instanceId: 'gw-unsampled' }, { exporter: unsampledExporter });
  unsampled = await startProxyFixture(routes(), { intermediaryId: 'gw-unsampled', tracer: createOtelRequestTracer(dropping) });
});

afterAll(async () => {
  await untraced.stop();
  await traced.stop();
  await unsampled.stop();
  await Promise.all([destination.close(), flaky.close()]);
});

async function spansOf(traceId: string, count: number): Promise<ReadableSpan[]> {
  await expect.poll(() => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId).length, { timeout: 5_000 }).toBe(count);
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

describe('tracing off', () => {
  it('forwards the originator’s traceparent and tracestate untouched and logs its trace id', async () => {
    const res = await fetch(`${untraced.url}/acme/Patient/1`, { headers: { traceparent: TRACEPARENT, tracestate: 'a=1,b=2' } });
    expect(res.status).toBe(200);
    const received = destination.received.at(-1);
    expect(received?.headers.traceparent).toBe(TRACEPARENT);
    expect(received?.headers.tracestate).toBe('a=1,b=2');
    await expect.poll(() => accessLines.find((l) => l.msg === 'access')).toMatchObject({ traceId: TRACE_ID, destination: 'acme', rule: '(default)' });
    expect(accessLines.find((l) => l.msg === 'access')).not.toHaveProperty('spanId');
  });

  it('adds no trace context to a request that had none', async () => {
    await (await fetch(`${untraced.url}/acme/Patient/2`)).arrayBuffer();
    expect(destination.received.at(-1)?.headers.traceparent).toBeUndefined();
  });
});

describe('tracing on', () => {
  it('continues the originator’s trace and sends the client span upstream as the parent', async () => {
    const res = await fetch(`${traced.url}/acme/Patient/1?name=x`, { headers: { traceparent: TRACEPARENT, tracestate: 'a=1' } });
    expect(res.status).toBe(200);
    const spans = await spansOf(TRACE_ID, 2);
    const server = spans.find((s) => s.kind === SpanKind.SERVER);
    const client = spans.find((s) => s.kind === SpanKind.CLIENT);
    expect(server?.parentSpanContext?.spanId).toBe(PARENT);
    expect(client?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    const received = destination.received.at(-1);
    expect(received?.headers.traceparent).toBe(`00-${TRACE_ID}-${client?.spanContext().spanId}-01`);
    expect(received?.headers.tracestate).toBe('a=1');
    // Exactly one traceparent upstream: the originator's was replaced, not repeated.
    expect(received?.rawHeaders.filter((name) => name.toLowerCase() === 'traceparent')).toHaveLength(1);
    expect(server?.name).toBe('GET Patient/{id}');
    expect(server?.attributes).toMatchObject({ 'http.route': 'Patient/{id}', 'fhir.destination': 'acme', 'http.response.status_code': 200 });
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('name=x');
  });

  it('makes one client span per attempt: the 503 retried, then the 200', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    const res = await fetch(`${traced.url}/flaky/Patient/1`, { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
    expect(res.status).toBe(200);
    const spans = await spansOf(traceId, 3);
    const attempts = spans.filter((s) => s.kind === SpanKind.CLIENT).sort((a, b) => a.startTime[1] - b.startTime[1] + (a.startTime[0] - b.startTime[0]) * 1e9);
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200]);
    expect(attempts[0]?.attributes['fhirmesh.retried_for']).toBe('unavailable');
    expect(attempts[1]?.attributes).toMatchObject({ 'http.request.resend_count': 1, 'fhirmesh.retry_reason': 'unavailable' });
    // Each attempt told the destination its own span.
    const sent = flaky.received.slice(-2).map((r) => r.headers.traceparent);
    expect(sent).toEqual(attempts.map((s) => `00-${traceId}-${s.spanContext().spanId}-01`));
  });
});

describe('tracing on, the request not sampled', () => {
  it('still takes part: the trace id goes on, unsampled, naming this hop; no span is recorded', async () => {
    const res = await fetch(`${unsampled.url}/flaky/Patient/1`, { headers: { traceparent: TRACEPARENT } });
    expect(res.status).toBe(200);
    const sent = flaky.received.slice(-2).map((r) => String(r.headers.traceparent));
    expect(sent).toHaveLength(2);
    for (const traceparent of sent) expect(traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    expect(sent[0]).not.toContain(PARENT);
    // Both attempts name the same (unrecorded) span: nothing more is built for them.
    expect(sent[1]).toBe(sent[0]);
    expect(unsampledExporter.getFinishedSpans()).toHaveLength(0);
  });
});
