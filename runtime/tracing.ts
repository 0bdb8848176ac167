// OpenTelemetry tracing of both processes, configured by the standard OTEL_* variables. The SDK and
// the OTLP exporter are loaded (dynamic import) only when an endpoint is set: no tracing, no cost.

import type { Tracer } from '@opentelemetry/api';
import type * as SdkTrace from '@opentelemetry/sdk-trace';
import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace';

export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';

/** What the OTEL_* variables ask for; `tracingSettings` returns undefined when they ask for nothing. */
export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, as given. */
  endpoint: string;
  protocol: OtlpProtocol;
  sampler: SamplerSetting;
  batch: { scheduledDelayMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number; exportTimeoutMillis?: number };
}

export type SamplerSetting =
  | { kind: 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' }
  | { kind: 'traceidratio' | 'parentbased_traceidratio'; ratio: number };

/** A bad OTEL_* value: the message names the variable and what it accepts. */
export class TracingConfigError extends Error {}

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
const PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];

/**
 * Reads the OTEL_* variables the way the OpenTelemetry specification defines them. Undefined when
 * tracing is off: no endpoint, OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporter = value(env, 'OTEL_TRACES_EXPORTER');
  if (exporter !== undefined) {
    const names = exporter.split(',').map((n) => n.trim().toLowerCase());
    if (names.includes('none')) return undefined;
    if (names.some((n) => n !== 'otlp')) throw new TracingConfigError(`OTEL_TRACES_EXPORTER '${exporter}': only otlp (or none) is supported`);
  }
  const endpoint = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (endpoint === undefined) return undefined;
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new TracingConfigError(`OTEL_EXPORTER_OTLP_ENDPOINT '${endpoint}' must be an http:// or https:// URL, e.g. http://otel-collector:4318`);
  }
  const protocolName = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = value(env, protocolName) ?? 'http/protobuf';
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new TracingConfigError(`${protocolName} '${protocol}' must be one of ${PROTOCOLS.join(', ')}`);
  }
  return {
    endpoint,
    protocol: protocol as OtlpProtocol,
    sampler: samplerSetting(env),
    batch: {
      ...positive(env, 'OTEL_BSP_SCHEDULE_DELAY', 'scheduledDelayMillis'),
      ...positive(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize'),
      ...positive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'maxExportBatchSize'),
      ...positive(env, 'OTEL_BSP_EXPORT_TIMEOUT', 'exportTimeoutMillis'),
    },
  };
}

function samplerSetting(env: NodeJS.ProcessEnv): SamplerSetting {
  const name = (value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(name)) {
    throw new TracingConfigError(`OTEL_TRACES_SAMPLER '${name}' must be one of ${SAMPLERS.join(', ')}`);
  }
  if (name !== 'traceidratio' && name !== 'parentbased_traceidratio') return { kind: name as 'always_on' };
  const arg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  const ratio = arg === undefined ? 1 : Number(arg);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new TracingConfigError(`OTEL_TRACES_SAMPLER_ARG '${arg}' must be a sampling ratio between 0 and 1, e.g. 0.01`);
  }
  return { kind: name, ratio };
}

function positive<K extends string>(env: NodeJS.ProcessEnv, name: string, key: K): Partial<Record<K, number>> {
  const text = value(env, name);
  if (text === undefined) return {};
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new TracingConfigError(`${name} '${text}' must be a positive whole number`);
  return { [key]: n } as Partial<Record<K, number>>;
}

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const text = env[name]?.trim();
  return text === undefined || text === '' ? undefined : text;
}

/** A started tracer provider: the tracer both processes use, and its flush-and-stop. */
export interface Tracing {
  tracer: Tracer;
  settings: TracingSettings;
  /** Exports what is buffered, then stops; called on graceful shutdown. */
  shutdown(): Promise<void>;
}

export interface TracingIdentity {
  /** service.name unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise. */
  serviceName: string;
  serviceVersion: string;
  /** service.instance.id: this process's name among its peers (intermediary id, controller id). */
  instanceId: string;
}

/**
 * Loads the SDK and the exporter the settings name and starts a provider with a batch processor.
 * No global registration and no context manager: callers pass parents explicitly, so nothing on
 * the request path touches AsyncLocalStorage.
 */
export async function startTracing(
  settings: TracingSettings,
  identity: TracingIdentity,
  options: { exporter?: SpanExporter } = {},
): Promise<Tracing> {
  const [sdk, resources] = await Promise.all([import('@opentelemetry/sdk-trace'), import('@opentelemetry/resources')]);
  const exporter = options.exporter ?? (await createExporter(settings));
  const detected = resources.detectResources({ detectors: [resources.envDetector] });
  const resource = resources
    .resourceFromAttributes({ 'service.name': identity.serviceName, 'service.version': identity.serviceVersion, 'service.instance.id': identity.instanceId })
    .merge(detected);
  const provider = new sdk.TracerProvider({
    resource,
    sampler: createSampler(sdk, settings.sampler),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter, ...settings.batch })],
  });
  return {
    tracer: provider.getTracer('fhirmesh', identity.serviceVersion),
    settings,
    shutdown: () => provider.shutdown(),
  };
}

async function createExporter(settings: TracingSettings): Promise<SpanExporter> {
  // The exporters read the endpoint, headers, timeout, compression and TLS from OTEL_EXPORTER_OTLP_*
  // themselves (and add /v1/traces to a base endpoint over HTTP), so nothing is passed here.
  switch (settings.protocol) {
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  }
}

function createSampler(sdk: typeof SdkTrace, setting: SamplerSetting): Sampler {
  switch (setting.kind) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return new sdk.TraceIdRatioBasedSampler(setting.ratio);
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(setting.ratio) });
  }
}

/** One line for start-up logs: where spans go and how many. */
export function describeTracing(settings: TracingSettings | undefined): string {
  if (settings === undefined) return 'off (no OTEL_EXPORTER_OTLP_ENDPOINT)';
  const s = settings.sampler;
  return `OTLP ${settings.protocol} to ${settings.endpoint}, sampler ${s.kind}${'ratio' in s ? ` ${s.ratio}` : ''}`;
}
