// Pins that tracing off costs a sidecar nothing: without OTEL_EXPORTER_OTLP_ENDPOINT the proxy loads
// nothing of OpenTelemetry (not even its API) and not its own tracer. With an endpoint, it does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnProxy, type SpawnedProxy } from '../support/spawn-proxy.ts';

const RECORDER = pathToFileURL(path.resolve(import.meta.dirname, '../support/record-loaded-modules.ts')).href;
const OTEL_MODULES = /node_modules\/@opentelemetry\/|telemetry\/internal\/otel-/;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-otel-loaded-'));
const running: SpawnedProxy[] = [];

async function otelModulesLoaded(name: string, env: Record<string, string>): Promise<string[]> {
  const listFile = path.join(dir, `${name}.loaded`);
  const proxy = await spawnProxy({
    args: ['--controller', '127.0.0.1:1', '--node-id', name],
    env: { NODE_OPTIONS: `--import=${RECORDER}`, FHIRMESH_TEST_LOADED_MODULES_FILE: listFile, ...env },
  });
  running.push(proxy);
  await fetch(`${proxy.adminUrl}/healthz`);
  proxy.signal('SIGTERM');
  expect((await proxy.waitForExit()).code).toBe(0);
  const loaded = fs.readFileSync(listFile, 'utf8').split('\n');
  expect(loaded.length).toBeGreaterThan(50);
  return loaded.filter((url) => OTEL_MODULES.test(url));
}

describe('which proxy loads OpenTelemetry', () => {
  afterAll(async () => {
    await Promise.all(running.map((proxy) => proxy.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a proxy without an OTLP endpoint loads none of it', async () => {
    expect(await otelModulesLoaded('off', {})).toEqual([]);
  });

  it('a proxy with OTEL_TRACES_EXPORTER=none loads none of it either', async () => {
    expect(await otelModulesLoaded('none', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_TRACES_EXPORTER: 'none' })).toEqual([]);
  });

  it('a proxy with an endpoint loads the SDK and the exporter the protocol names', async () => {
    const loaded = await otelModulesLoaded('on', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
    for (const library of ['@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-proto']) {
      expect(loaded.some((url) => url.includes(`/node_modules/${library}/`)), library).toBe(true);
    }
    expect(loaded.some((url) => url.includes('/node_modules/@opentelemetry/exporter-trace-otlp-grpc/'))).toBe(false);
  });
});
