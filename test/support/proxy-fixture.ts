// Starts a real proxy in this test process on 127.0.0.1:0 from a routes file written to a temp
// dir, and rewrites that file on demand (hot reload); stopped by the test's afterAll/afterEach.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy, silentLogger, type RunningProxy } from '../../proxy/src/index.ts';
import type { ProxyLimits } from '../../proxy/src/config/limits.ts';
import { loadRoutesFile } from '../../proxy/src/table/routes-file.ts';
import type { RequestTracer } from '../../proxy/src/telemetry/request-tracer.ts';
import type { Logger } from '../../runtime/index.ts';

export interface ProxyFixture extends RunningProxy {
  routesFile: string;
  dir: string;
  writeRoutes(yaml: string): void;
  stop(): Promise<void>;
}

/**
 * The fixture's logger is silent, so a refused routes file would only show as 503s in every test:
 * unless `allowUnready` is set, a start without a table fails here with the loader's own reasons.
 */
export async function startProxyFixture(
  routesYaml: string,
  options: {
    intermediaryId?: string;
    allowUnready?: boolean;
    limits?: Partial<ProxyLimits>;
    /** Spans of the proxy (e.g. on an in-memory exporter); none by default. */
    tracer?: RequestTracer;
    /** With access lines (silent and without them by default). */
    logger?: Logger;
    logHeaders?: string[];
  } = {},
): Promise<ProxyFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-test-'));
  const routesFile = path.join(dir, 'routes.yaml');
  fs.writeFileSync(routesFile, routesYaml);
  const proxy = await startProxy(
    {
      routesFile,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      intermediaryId: options.intermediaryId ?? 'gw-test',
      shutdownGraceMs: 2_000,
      logLevel: 'error',
      accessLog: options.logger !== undefined,
      ...(options.logHeaders !== undefined ? { logHeaders: options.logHeaders } : {}),
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
    },
    { logger: options.logger ?? silentLogger(), watchOptions: { debounceMs: 30, pollMs: 200 }, ...(options.tracer !== undefined ? { tracer: options.tracer } : {}) },
  );
  if (!proxy.holder.loaded && options.allowUnready !== true) {
    await proxy.shutdown(0);
    try {
      loadRoutesFile(routesFile);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    throw new Error('the proxy started without a route table, yet its routes file loads: check the fixture');
  }
  return {
    ...proxy,
    routesFile,
    dir,
    writeRoutes(yaml: string) {
      // Write-then-rename, as editors and ConfigMap mounts do: the proxy never sees half a file.
      const tmp = `${routesFile}.tmp`;
      fs.writeFileSync(tmp, yaml);
      fs.renameSync(tmp, routesFile);
    },
    async stop() {
      await proxy.shutdown(500);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One FhirRoute manifest, for tests that need a few lines of YAML. */
export function routeYaml(name: string, spec: string, namespace = 'default'): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
${spec
  .trim()
  .split('\n')
  .map((l) => '  ' + l)
  .join('\n')}
---
`;
}
