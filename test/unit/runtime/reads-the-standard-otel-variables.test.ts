// The OTEL_* variables read as the OpenTelemetry specification defines them, refused with one line
// naming the variable; and both binaries' flag parsers refuse a bad value at start.
import { describe, expect, it } from 'vitest';
import { parseControllerFlags } from '../../../controller/src/config/flags.ts';
import { parseProxyFlags } from '../../../proxy/src/config/flags.ts';
import { TracingConfigError, tracingSettings } from '../../../runtime/index.ts';

describe('tracingSettings', () => {
  it('is off without an endpoint, with OTEL_SDK_DISABLED, and with OTEL_TRACES_EXPORTER=none', () => {
    expect(tracingSettings({})).toBeUndefined();
    expect(tracingSettings({ OTEL_TRACES_SAMPLER: 'always_on' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });

  it('defaults to OTLP http/protobuf and parentbased_always_on', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({
      endpoint: 'http://c:4318',
      protocol: 'http/protobuf',
      sampler: { kind: 'parentbased_always_on' },
      batch: {},
    });
  });

  it('takes the traces-specific endpoint and protocol first, the sampler ratio and the batch settings', () => {
    expect(
      tracingSettings({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4317',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.01',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_BSP_MAX_QUEUE_SIZE: '4096',
      }),
    ).toEqual({
      endpoint: 'http://t:4317',
      protocol: 'grpc',
      sampler: { kind: 'parentbased_traceidratio', ratio: 0.01 },
      batch: { scheduledDelayMillis: 200, maxQueueSize: 4096 },
    });
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'c:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT 'c:4318' must be an http/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }, /OTEL_EXPORTER_OTLP_PROTOCOL 'thrift' must be one of grpc, http\/protobuf, http\/json/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_SAMPLER: 'jaeger_remote' }, /OTEL_TRACES_SAMPLER 'jaeger_remote' must be one of/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }, /OTEL_TRACES_SAMPLER_ARG '1.5' must be a sampling ratio/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER 'zipkin': only otlp/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_BSP_SCHEDULE_DELAY: 'soon' }, /OTEL_BSP_SCHEDULE_DELAY 'soon' must be a positive whole number/],
  ])('refuses %j', (env, message) => {
    expect(() => tracingSettings(env)).toThrow(TracingConfigError);
    expect(() => tracingSettings(env)).toThrow(message);
  });

  it('makes both binaries refuse a bad value at start, naming the variable', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER_ARG: 'x', OTEL_TRACES_SAMPLER: 'traceidratio' };
    expect(() => parseProxyFlags(['--routes', 'r.yaml'], env)).toThrow(/OTEL_TRACES_SAMPLER_ARG 'x'/);
    expect(() => parseControllerFlags(['--routes-dir', 'routes'], env)).toThrow(/OTEL_TRACES_SAMPLER_ARG 'x'/);
  });

  it('hands the settings to both binaries when an endpoint is given', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    const proxy = parseProxyFlags(['--routes', 'r.yaml'], env);
    const controller = parseControllerFlags(['--routes-dir', 'routes'], env);
    expect(proxy !== 'help' && proxy.tracing?.endpoint).toBe('http://c:4318');
    expect(controller !== 'help' && controller.tracing?.protocol).toBe('http/protobuf');
  });
});
