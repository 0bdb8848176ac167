// A worker process of simulated proxies (started by workers.ts with an IPC channel): opens the streams
// it is told to, reconnects dropped ones with jittered backoff as the real proxy does, and answers
// the orchestrator's questions (first tables, a wait for routes to arrive, stream ends by code).
// It runs apart from the controller and the orchestrator so that neither shares its event loop.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { DiscoveryResponse__Output } from '../../../api/discovery/index.ts';
import { SimulatedProxy, wallMs } from './simulated-proxy.ts';
import type { ControllerEndpoint } from './simulated-proxy.ts';
import type { ProxySpec, WaitResult, WorkerReply, WorkerRequest, WorkerStats } from './worker-protocol.ts';

const RECONNECT_INITIAL_MS = 250;
const RECONNECT_MAX_MS = 10_000;

let proxies: SimulatedProxy[] = [];
/** Stream ends by gRPC status name (CANCELLED from our own close() is not counted). */
let ends: Record<string, number> = {};
/** The first details seen per status, to say why streams ended. */
let endDetails: Record<string, string> = {};
/** Responses that reached proxies outside the namespaces of the current wait. */
let outOfScopeResponses = 0;
let watchedNamespaces = new Set<string>();
/**
 * This worker's own event-loop delay since the phase began: a worker blocked for seconds would miss
 * keepalive pings and ACK late, and then the figures measure the harness, not the controller.
 */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const attempts = new WeakMap<SimulatedProxy, number>();
const waiters: (() => void)[] = [];

function wake(): void {
  for (const waiter of waiters.splice(0)) waiter();
}

function onAnswered(proxy: SimulatedProxy, _response: DiscoveryResponse__Output, _acked: boolean): void {
  attempts.set(proxy, 0);
  if (watchedNamespaces.size > 0 && !watchedNamespaces.has(proxy.namespace)) outOfScopeResponses += 1;
  wake();
}

function onEnded(proxy: SimulatedProxy, code: grpc.status, details: string): void {
  if (proxy.closed) return;
  const name = grpc.status[code] ?? String(code);
  ends[name] = (ends[name] ?? 0) + 1;
  endDetails[name] ??= details;
  if (code !== grpc.status.RESOURCE_EXHAUSTED && process.env['BENCH_WORKER_VERBOSE'] === '1') console.error(`${proxy.nodeId}: stream ended ${name}: ${details}`);
  const attempt = attempts.get(proxy) ?? 0;
  attempts.set(proxy, attempt + 1);
  // Full jitter, as proxy/src/discovery/discovery-client.ts: a wave of drops does not come back in lockstep.
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** attempt);
  setTimeout(() => {
    if (!proxy.closed) proxy.open();
  }, Math.random() * ceiling).unref();
  wake();
}

function open(endpoint: ControllerEndpoint, specs: readonly ProxySpec[], tokens: Readonly<Record<string, string>>): number {
  const openedAtMs = wallMs();
  for (const spec of specs) {
    const token = tokens[spec.namespace];
    const proxy = new SimulatedProxy({ endpoint, nodeId: spec.nodeId, namespace: spec.namespace, ...(token === undefined ? {} : { token }), onAnswered, onEnded });
    proxies.push(proxy);
    proxy.open();
  }
  return openedAtMs;
}

function stats(): WorkerStats {
  let connected = 0;
  let nacks = 0;
  let responses = 0;
  const snapshotRoutes: Record<string, number> = {};
  for (const proxy of proxies) {
    if (proxy.connected) connected += 1;
    nacks += proxy.nacks;
    responses += proxy.responses;
    snapshotRoutes[proxy.namespace] = Math.max(snapshotRoutes[proxy.namespace] ?? 0, proxy.snapshotRoutes);
  }
  return { loopDelayMaxMs: loopDelay.max / 1e6, proxies: proxies.length, connected, nacks, responses, ends: { ...ends }, endDetails: { ...endDetails }, snapshotRoutes, rssBytes: process.memoryUsage.rss() };
}

/** Resolves when `done` holds (checked after every answer and stream end), or at the deadline. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(left, 1_000));
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return true;
}

async function waitFirstTables(timeoutMs: number): Promise<WaitResult> {
  const complete = await until(() => proxies.every((proxy) => proxy.firstTableAtMs > 0), timeoutMs);
  const done = proxies.filter((proxy) => proxy.firstTableAtMs > 0);
  return {
    complete,
    proxies: proxies.length,
    done: done.length,
    lastAtMs: Math.max(0, ...done.map((proxy) => proxy.firstTableAtMs)),
    outOfScopeResponses: 0,
    stats: stats(),
  };
}

function watch(expected: readonly (readonly [namespace: string, destinationId: string, baseUrl: string])[]): void {
  const byNamespace = new Map<string, Map<string, string>>();
  for (const [namespace, destinationId, baseUrl] of expected) {
    const routes = byNamespace.get(namespace) ?? new Map<string, string>();
    routes.set(destinationId, baseUrl);
    byNamespace.set(namespace, routes);
  }
  watchedNamespaces = new Set(byNamespace.keys());
  outOfScopeResponses = 0;
  for (const proxy of proxies) {
    const routes = byNamespace.get(proxy.namespace);
    if (routes !== undefined) proxy.watchFor(routes);
  }
}

async function waitWatched(timeoutMs: number): Promise<WaitResult> {
  const inScope = proxies.filter((proxy) => watchedNamespaces.has(proxy.namespace));
  const complete = await until(() => inScope.every((proxy) => proxy.satisfiedAtMs > 0), timeoutMs);
  const done = inScope.filter((proxy) => proxy.satisfiedAtMs > 0);
  const result: WaitResult = {
    complete,
    proxies: inScope.length,
    done: done.length,
    lastAtMs: Math.max(0, ...done.map((proxy) => proxy.satisfiedAtMs)),
    outOfScopeResponses,
    stats: stats(),
  };
  watchedNamespaces = new Set();
  return result;
}

function closeAll(): WorkerStats {
  for (const proxy of proxies) proxy.close();
  const before = stats();
  proxies = [];
  ends = {};
  endDetails = {};
  return before;
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.op) {
    case 'open':
      loopDelay.reset();
      return { openedAtMs: open(request.endpoint, request.proxies, request.tokens) };
    case 'waitFirstTables':
      return waitFirstTables(request.timeoutMs);
    case 'watch':
      loopDelay.reset();
      watch(request.expected);
      return {};
    case 'waitWatched':
      return waitWatched(request.timeoutMs);
    case 'stats':
      return stats();
    case 'closeAll':
      return closeAll();
  }
}

process.on('message', (message: WorkerRequest) => {
  handle(message).then(
    (result) => process.send?.({ id: message.id, result } satisfies WorkerReply),
    (error: unknown) => process.send?.({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies WorkerReply),
  );
});
// The orchestrator gone (killed, crashed): nothing left to answer.
process.on('disconnect', () => {
  closeAll();
  process.exit(0);
});
process.send?.({ id: 0, result: { ready: true } } satisfies WorkerReply);
