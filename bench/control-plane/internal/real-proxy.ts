// The one real fhirmesh-proxy (compiled dist/) among the simulated ones, in controller mode, and the
// two upstreams it forwards to. Each upstream names itself and echoes the path it was asked for, so
// a probe sees which backend URL a route is using at this moment.
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { logLine, logTailOf } from './controller.ts';
import { onCleanup, startLogged, stopProcess } from './processes.ts';
import { wallMs } from './simulated-proxy.ts';

export interface Upstream {
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>/<path>`: a backend URL for a route. */
  url(path: string): string;
}

export async function startUpstream(name: string): Promise<Upstream> {
  const server: Server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    const body = JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: `${name}${req.url ?? ''}` } });
    res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { name, port, url: (path) => `http://127.0.0.1:${port}/${path}` };
}

export interface RealProxy {
  readonly child: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  /** Spawn to /readyz 200 (its first table applied). */
  readonly readyMs: number;
  /**
   * Asks for `destinationId` every `intervalMs` until the answer names `marker` (upstream and path);
   * resolves with the wall-clock time of that answer's arrival, or 0 at the deadline.
   */
  servesAt(destinationId: string, marker: string, deadlineMs: number, intervalMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface RealProxyOptions {
  readonly repoRoot: string;
  readonly workDir: string;
  readonly controller: string;
  readonly namespace: string;
  /** Kubernetes mode: --controller-ca, --controller-server-name, --token-file. */
  readonly args: readonly string[];
  readonly timeoutMs: number;
}

export async function startRealProxy(options: RealProxyOptions): Promise<RealProxy> {
  const logPath = join(options.workDir, 'real-proxy.log');
  const startedAt = performance.now();
  const child = startLogged(
    'fhirmesh-proxy',
    process.execPath,
    [
      join(options.repoRoot, 'dist/proxy/src/main.js'),
      '--controller', options.controller,
      '--node-id', 'bench-real-proxy',
      '--namespace', options.namespace,
      '--intermediary-id', 'bench-real-proxy',
      '--listen', '127.0.0.1:0',
      '--admin-listen', '127.0.0.1:0',
      '--state-dir', join(options.workDir, 'real-proxy-state'),
      '--no-access-log',
      ...options.args,
    ],
    logPath,
  );
  const fail = (why: string): Error => new Error(`fhirmesh-proxy ${why}; the end of ${logPath}:\n${logTailOf(logPath)}`);
  let urls: { url: string; adminUrl: string } | undefined;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw fail(`exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`);
    if (performance.now() - startedAt > options.timeoutMs) throw fail(`had no table within ${options.timeoutMs / 1000} s`);
    if (urls === undefined) {
      const line = logLine(logPath, 'proxy listening');
      if (typeof line?.['url'] === 'string' && typeof line['adminUrl'] === 'string') urls = { url: line['url'], adminUrl: line['adminUrl'] };
    }
    if (urls !== undefined && (await fetch(`${urls.adminUrl}/readyz`).then((response) => response.status === 200, () => false))) break;
    await sleep(50);
  }
  const agent = new Agent({ connections: 2, keepAliveTimeout: 60_000 });
  const origin = urls.url;
  return {
    child,
    url: origin,
    adminUrl: urls.adminUrl,
    readyMs: performance.now() - startedAt,
    async servesAt(destinationId, marker, deadlineMs, intervalMs = 5) {
      while (wallMs() < deadlineMs) {
        try {
          const response = await request(`${origin}/Patient/p1`, { dispatcher: agent, headers: { 'x-destination': destinationId, accept: 'application/fhir+json' } });
          const body = await response.body.text();
          const arrivedAtMs = wallMs();
          if (response.statusCode === 200 && body.includes(`"${marker}/Patient/p1"`)) return arrivedAtMs;
        } catch {
          // The proxy between tables or restarting: ask again.
        }
        await sleep(intervalMs);
      }
      return 0;
    },
    async stop() {
      await agent.close();
      await stopProcess(child, 5_000);
    },
  };
}
