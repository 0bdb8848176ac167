// Child of run.ts: the CPU one request costs the telemetry seam (proxy/src/telemetry/request-telemetry.ts)
// alone, in a fresh process, with tracing off, or on with the real OTLP/HTTP exporter batching to
// run.ts's sink: start → routed → one attempt (trace headers, first byte) → finished, metrics included,
// access line off. Free of the network and of the other processes' noise. Prints one JSON line.
import { RequestTelemetry } from '../../proxy/src/telemetry/request-telemetry.ts';
import { ProxyMetrics } from '../../proxy/src/telemetry/metrics.ts';
import type { RequestTracer } from '../../proxy/src/telemetry/request-tracer.ts';
import { silentLogger, startTracing, tracingSettings } from '../../runtime/index.ts';

const [mode = 'off', requestsText = '200000'] = process.argv.slice(2);
const requests = Number(requestsText);
let tracer: RequestTracer | undefined;
const settings = tracingSettings(process.env);
if (settings !== undefined) {
  const { createOtelRequestTracer } = await import('../../proxy/src/telemetry/internal/otel-request-tracer.ts');
  tracer = createOtelRequestTracer(await startTracing(settings, { serviceName: 'fhirmesh-proxy', serviceVersion: 'bench', instanceId: 'gw-bench' }));
}
const telemetry = new RequestTelemetry({ metrics: new ProxyMetrics(), logger: silentLogger(), accessLog: false, ...(tracer !== undefined ? { tracer } : {}) });
const backendUrl = new URL('http://127.0.0.1:8080/fhir');

function oneRequest(): void {
  const request = telemetry.start({ method: 'GET', scheme: 'http', traceparent: undefined, tracestate: undefined, header: () => undefined });
  request.routed({ destination: 'acme', interaction: 'read', resourceType: 'Patient', routeTemplate: 'Patient/{id}', rule: undefined, backendUrl });
  const attempt = request.attemptStarted({ retryReason: undefined });
  if (attempt.upstreamHeaders().length > 4) throw new Error('unexpected trace headers');
  attempt.firstByte(200);
  attempt.finished({ status: 200 });
  request.finished({ status: 200, origin: 'destination', errorCode: undefined, aborted: false });
}

// Yield now and then, as a server does between requests: the batch processor's timer must run.
async function run(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    oneRequest();
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

await run(20_000);
const before = process.cpuUsage();
const started = performance.now();
await run(requests);
// What was recorded is exported (serialised and sent) inside the measurement.
await tracer?.shutdown();
const cpu = process.cpuUsage(before);
process.stdout.write(JSON.stringify({ mode, requests, cpuMicrosPerRequest: (cpu.user + cpu.system) / requests, wallMs: performance.now() - started, rssBytes: process.memoryUsage.rss() }) + '\n');
process.exit(0);
