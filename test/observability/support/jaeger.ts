// A real Jaeger (v2 all-in-one: OTLP receivers, in-memory store, query API) on loopback ports picked
// here, configured from a file in a temp dir; its query API is read back as the Jaeger UI reads it.

import fs from 'node:fs';
import path from 'node:path';
import { freePorts } from './tools.ts';
import { startProcess, waitUntil } from './managed-process.ts';

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
  logs: { timestamp: number; fields: { key: string; value: unknown }[] }[];
  processID: string;
  startTime: number;
  duration: number;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>;
}

export interface Jaeger {
  /** OTLP/HTTP base URL (the exporters add /v1/traces). */
  otlpHttpUrl: string;
  /** OTLP/gRPC endpoint URL. */
  otlpGrpcUrl: string;
  queryUrl: string;
  services(): Promise<string[]>;
  /** Every trace of a service in the last hour. */
  traces(service: string): Promise<JaegerTrace[]>;
  /** The query API's own JSON text for a service's traces: everything Jaeger stores, as it shows it. */
  tracesText(service: string): Promise<string>;
  trace(traceId: string): Promise<JaegerTrace | undefined>;
  stop(): Promise<void>;
}

export async function startJaeger(binary: string, dir: string): Promise<Jaeger> {
  const [grpc, http, query, queryGrpc, health] = (await freePorts(5)) as [number, number, number, number, number];
  const config = `
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${health}
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpc}
      http:
        endpoint: 127.0.0.1:${http}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
  const file = path.join(dir, 'jaeger.yaml');
  fs.writeFileSync(file, config);
  const proc = startProcess(binary, ['--config', file], { cwd: dir });
  const queryUrl = `http://127.0.0.1:${query}`;
  await waitUntil(
    'jaeger healthy',
    async () => {
      const res = await fetch(`http://127.0.0.1:${health}/status`);
      return res.ok && ((await res.json()) as { healthy?: boolean }).healthy === true;
    },
    proc,
  );
  const get = async (pathAndQuery: string): Promise<string> => {
    const res = await fetch(queryUrl + pathAndQuery);
    const text = await res.text();
    if (!res.ok && res.status !== 404) throw new Error(`jaeger ${pathAndQuery}: ${res.status} ${text}`);
    return res.ok ? text : '';
  };
  const tracesText = (service: string): Promise<string> => get(`/api/traces?service=${encodeURIComponent(service)}&lookback=1h&limit=10000`);
  return {
    otlpHttpUrl: `http://127.0.0.1:${http}`,
    otlpGrpcUrl: `http://127.0.0.1:${grpc}`,
    queryUrl,
    async services() {
      return ((JSON.parse(await get('/api/services')) as { data: string[] | null }).data ?? []);
    },
    async traces(service) {
      return (JSON.parse(await tracesText(service)) as { data: JaegerTrace[] | null }).data ?? [];
    },
    tracesText,
    async trace(traceId) {
      const text = await get(`/api/traces/${traceId}`);
      if (text === '') return undefined;
      return (JSON.parse(text) as { data: JaegerTrace[] | null }).data?.[0];
    },
    stop: () => proc.stop(),
  };
}

/** A span's tag value by key. */
export function tag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}

/** The span's parent span id within its trace (CHILD_OF), if any. */
export function parentOf(span: JaegerSpan): string | undefined {
  return span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
}
