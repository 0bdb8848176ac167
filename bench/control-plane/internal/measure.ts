// One source measured end to end: the controller started on the routes, the simulated proxies and
// the real one connected, then one-route changes one after another, a burst, idle CPU, peak RSS and
// a reconnect wave. Every latency runs from the edit (wall clock before the file rename or the PATCH)
// to an ACK written by a simulated proxy, or to the real proxy's first answer from the new backend.
import { setTimeout as sleep } from 'node:timers/promises';
import { readMachineCpu } from '../../forwarding/internal/machine-load.ts';
import { startController, scrape } from './controller.ts';
import type { RunningController } from './controller.ts';
import type { BenchOptions } from './options.ts';
import { treeCpuMicros, treeMemory } from './processes.ts';
import { startRealProxy } from './real-proxy.ts';
import type { RealProxy, Upstream } from './real-proxy.ts';
import { namespaceNames } from './routes.ts';
import type { MeshSource, RouteRef } from './routes.ts';
import { wallMs } from './simulated-proxy.ts';
import type { ControllerEndpoint } from './simulated-proxy.ts';
import type { ProxySpec, WorkerStats } from './worker-protocol.ts';
import { ProxyWorkers } from './workers.ts';

export interface PhaseCpu {
  /** CPU seconds the controller spent in the phase. */
  readonly controllerSeconds: number;
  /** CPU seconds of the simulated-proxy workers: when near the phase's wall time × cores, the harness was the limit. */
  readonly workerSeconds: number;
  readonly wallSeconds: number;
  /** Cores the rest of the machine (not the controller, not the workers) kept busy meanwhile: other engineers, CI, the apiserver. */
  readonly otherCores: number;
}

export interface ChangeSample {
  readonly route: string;
  /** How long the edit itself took (the file written and renamed, or the PATCH answered). */
  readonly editMs: number;
  /** Edit to the last ACK among the proxies of the route's namespace; null when one never got it. */
  readonly lastAckMs: number | null;
  readonly proxiesInScope: number;
  readonly proxiesDone: number;
  /** Responses that reached proxies of other namespaces meanwhile (should be 0). */
  readonly outOfScopeResponses: number;
  /** Edit to the real proxy's first answer from the new backend; null when none came. */
  readonly realProxyMs: number | null;
  /** The controller's own fhirmesh_controller_convergence_seconds over the change (sum/count of the delta), in ms. */
  readonly convergenceMetricMs: number | null;
  readonly convergenceObservations: number;
  /** The simulated proxies' longest event-loop delay over the change (the harness's own lag). */
  readonly workerLoopDelayMaxMs: number;
}

export interface SourceRun {
  readonly source: MeshSource['kind'];
  readonly routes: number;
  readonly namespaces: number;
  readonly proxies: number;
  readonly setupMs: number;
  readonly controllerReadyMs: number;
  readonly firstTables: {
    readonly ms: number | null;
    readonly proxies: number;
    readonly done: number;
    readonly snapshotRoutes: Readonly<Record<string, number>>;
    /** Streams that ended before every proxy had its table (they reconnected, as the real proxy does). */
    readonly ends: Readonly<Record<string, number>>;
    readonly workerLoopDelayMaxMs: number;
    readonly cpu: PhaseCpu;
  };
  readonly realProxyReadyMs: number;
  readonly changes: readonly ChangeSample[];
  readonly changesCpu: PhaseCpu;
  readonly burst: {
    readonly edits: number;
    readonly writeMs: number;
    /** First edit to the last ACK of the last in-scope proxy. */
    readonly lastAckMs: number | null;
    readonly proxiesInScope: number;
    readonly proxiesDone: number;
    /** Responses per in-scope proxy over the burst (1: coalesced into one delta). */
    readonly responsesPerProxy: number;
    readonly cpu: PhaseCpu;
  } | null;
  readonly idle: { readonly settleSeconds: number; readonly seconds: number; readonly cpuPercent: number; readonly workerCpuPercent: number };
  readonly controllerPeakRssBytes: number;
  readonly controllerRssBytes: number;
  readonly beforeWave: WorkerStats;
  readonly wave: {
    readonly proxies: number;
    readonly ms: number | null;
    readonly done: number;
    /** Stream ends by gRPC status during the wave (reconnected with backoff, as the real proxy does). */
    readonly ends: Readonly<Record<string, number>>;
    readonly endDetails: Readonly<Record<string, string>>;
    /** The simulated proxies' longest event-loop delay in the wave (past 10 s they would drop their own keepalives). */
    readonly workerLoopDelayMaxMs: number;
    readonly slowConsumerDisconnects: number;
    readonly controllerPeakRssBytes: number;
    /** Set when the memory guard killed the controller during the wave (its RSS then). */
    readonly controllerKilledAtRssBytes: number | null;
    readonly cpu: PhaseCpu;
  } | null;
  readonly metrics: { readonly nacks: number; readonly slowConsumerDisconnects: number; readonly responses: Readonly<Record<string, number>> };
  readonly controllerLog: string;
}

export interface MeasureContext {
  readonly repoRoot: string;
  readonly workDir: string;
  readonly options: BenchOptions;
  readonly routes: readonly RouteRef[];
  readonly upstreams: readonly [Upstream, Upstream];
  /** Kubernetes mode: TLS, tokens, and the real proxy's flags for both. */
  readonly kubernetes?: { readonly tls: NonNullable<ControllerEndpoint['tls']>; readonly caFile: string; readonly tokens: Readonly<Record<string, string>>; readonly tokenFiles: Readonly<Record<string, string>> };
  readonly log: (line: string) => void;
}

function proxySpecs(prefix: string, count: number, namespaces: readonly string[]): ProxySpec[] {
  return Array.from({ length: count }, (_, index) => ({ nodeId: `${prefix}-${String(index).padStart(5, '0')}`, namespace: namespaces[index % namespaces.length] as string }));
}

/** Last CPU reading per process: once a process is gone (the memory guard killed it) its last reading stands. */
const lastCpu = new Map<number, number>();

function controllerCpuMicros(pid: number): number {
  const now = Math.max(treeCpuMicros([pid]), lastCpu.get(pid) ?? 0);
  lastCpu.set(pid, now);
  return now;
}

function cpuMeter(controllerPid: number, workers: ProxyWorkers): () => PhaseCpu {
  const startedAt = performance.now();
  const controllerAt = controllerCpuMicros(controllerPid);
  const workersAt = treeCpuMicros(workers.pids());
  const machineAt = readMachineCpu();
  return () => {
    const controllerSeconds = (controllerCpuMicros(controllerPid) - controllerAt) / 1e6;
    const workerSeconds = (treeCpuMicros(workers.pids()) - workersAt) / 1e6;
    const wallSeconds = (performance.now() - startedAt) / 1000;
    const machineSeconds = (readMachineCpu().busyMicros - machineAt.busyMicros) / 1e6;
    return { controllerSeconds, workerSeconds, wallSeconds, otherCores: Math.max(0, machineSeconds - controllerSeconds - workerSeconds) / wallSeconds };
  };
}

async function convergenceSoFar(controller: RunningController): Promise<{ sum: number; count: number } | null> {
  const metrics = await scrape(controller.adminUrl);
  const sum = metrics.value('fhirmesh_controller_convergence_seconds_sum');
  const count = metrics.value('fhirmesh_controller_convergence_seconds_count');
  return sum === undefined || count === undefined ? null : { sum, count };
}

/** The metric's delta since `before`, once it has moved (it records when the last proxy answers), or after 2 s. */
async function convergenceDelta(controller: RunningController, before: { sum: number; count: number } | null): Promise<{ ms: number | null; observations: number }> {
  if (before === null) return { ms: null, observations: 0 };
  const deadline = Date.now() + 2_000;
  for (;;) {
    const now = await convergenceSoFar(controller);
    if (now !== null && now.count > before.count) return { ms: ((now.sum - before.sum) / (now.count - before.count)) * 1000, observations: now.count - before.count };
    if (Date.now() > deadline) return { ms: null, observations: 0 };
    await sleep(50);
  }
}

/**
 * Kills the controller when its RSS passes the limit: this machine is shared, and a reconnect wave
 * once grew today's controller to 21 GB until the kernel's OOM killer ended it.
 */
function memoryGuard(controller: RunningController, limitBytes: number, log: (line: string) => void): { tripped: () => number | null; exited: Promise<void>; stop: () => void } {
  let trippedAt: number | null = null;
  const exited = new Promise<void>((resolve) => {
    if (controller.child.exitCode !== null || controller.child.signalCode !== null) resolve();
    else controller.child.once('exit', () => resolve());
  });
  const timer = setInterval(() => {
    const { rssBytes } = treeMemory([controller.pid]);
    controllerCpuMicros(controller.pid);
    if (rssBytes <= limitBytes || trippedAt !== null) return;
    trippedAt = rssBytes;
    log(`controller RSS ${(rssBytes / 1048576).toFixed(0)} MiB passed --max-controller-rss ${(limitBytes / 1048576).toFixed(0)}: killing it`);
    try {
      process.kill(-controller.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, 200);
  return { tripped: () => trippedAt, exited, stop: () => clearInterval(timer) };
}

export async function measureSource(source: MeshSource, context: MeasureContext): Promise<SourceRun> {
  const { options, log, routes, upstreams } = context;
  const namespaces = namespaceNames(options.namespaces);
  const timeoutMs = options.timeoutSeconds * 1000;
  const controller = await startController(context.repoRoot, context.workDir, [...source.controllerArgs, ...options.controllerArgs], source.controllerEnv, Math.max(timeoutMs, 300_000));
  log(`${source.kind}: controller ready in ${(controller.readyMs / 1000).toFixed(2)} s (${routes.length} routes; log ${controller.logPath})`);
  const workers = await ProxyWorkers.start(options.workers, context.workDir);
  const guard = memoryGuard(controller, options.maxControllerRssMiB * 1048576, log);
  let realProxy: RealProxy | undefined;
  try {
    const endpoint: ControllerEndpoint = { address: controller.grpcAddress, ...(context.kubernetes === undefined ? {} : { tls: context.kubernetes.tls }) };
    const tokens = context.kubernetes?.tokens ?? {};

    // All proxies at once, each on its own connection: open to the last first-table ACK.
    let meter = cpuMeter(controller.pid, workers);
    const openedAtMs = await workers.open(endpoint, proxySpecs('sim', options.proxies, namespaces), tokens);
    const first = await workers.waitFirstTables(timeoutMs);
    const firstTables = { ms: first.complete ? first.lastAtMs - openedAtMs : null, proxies: first.proxies, done: first.done, snapshotRoutes: first.stats.snapshotRoutes, ends: first.stats.ends, workerLoopDelayMaxMs: first.stats.loopDelayMaxMs, cpu: meter() };
    log(`${source.kind}: ${first.done}/${first.proxies} proxies have their first table${firstTables.ms === null ? ' (TIMED OUT)' : ` in ${(firstTables.ms / 1000).toFixed(2)} s`}, streams ended meanwhile: ${JSON.stringify(first.stats.ends)}; workers' longest loop delay ${first.stats.loopDelayMaxMs.toFixed(0)} ms`);

    const realNamespace = namespaces[0] as string;
    realProxy = await startRealProxy({
      repoRoot: context.repoRoot,
      workDir: context.workDir,
      controller: controller.grpcAddress,
      namespace: realNamespace,
      args: context.kubernetes === undefined ? [] : ['--controller-ca', context.kubernetes.caFile, '--controller-server-name', context.kubernetes.tls.serverName, '--token-file', context.kubernetes.tokenFiles[realNamespace] as string],
      timeoutMs,
    });
    log(`${source.kind}: real proxy ready in ${(realProxy.readyMs / 1000).toFixed(2)} s`);

    // One-route changes in the real proxy's namespace, each to a route not changed before, waited out one by one.
    const ownRoutes = routes.filter((route) => route.namespace === realNamespace);
    const stride = Math.max(1, Math.floor(ownRoutes.length / options.changes));
    const changes: ChangeSample[] = [];
    const changed = new Set<RouteRef>();
    meter = cpuMeter(controller.pid, workers);
    for (let index = 0; index < options.changes; index += 1) {
      const route = ownRoutes[(index * stride) % ownRoutes.length] as RouteRef;
      changed.add(route);
      const upstream = upstreams[index % 2 === 0 ? 1 : 0];
      const path = `change-${index}`;
      const url = upstream.url(path);
      const metricBefore = await convergenceSoFar(controller);
      await workers.watch([[route.namespace, route.destinationId, url]]);
      const editAtMs = wallMs();
      await source.edit(route, url);
      const editMs = wallMs() - editAtMs;
      const [wait, servedAtMs] = await Promise.all([workers.waitWatched(timeoutMs), realProxy.servesAt(route.destinationId, `${upstream.name}/${path}`, editAtMs + timeoutMs)]);
      const metric = await convergenceDelta(controller, metricBefore);
      const sample: ChangeSample = {
        route: `${route.namespace}/${route.name}`,
        editMs,
        lastAckMs: wait.complete ? wait.lastAtMs - editAtMs : null,
        proxiesInScope: wait.proxies,
        proxiesDone: wait.done,
        outOfScopeResponses: wait.outOfScopeResponses,
        realProxyMs: servedAtMs === 0 ? null : servedAtMs - editAtMs,
        convergenceMetricMs: metric.ms,
        convergenceObservations: metric.observations,
        workerLoopDelayMaxMs: wait.stats.loopDelayMaxMs,
      };
      changes.push(sample);
      const ms = (value: number | null): string => (value === null ? 'never' : `${(value / 1000).toFixed(3)} s`);
      log(`${source.kind}: change ${index + 1}/${options.changes} ${sample.route}: last ACK ${ms(sample.lastAckMs)} (${wait.done}/${wait.proxies}), real proxy ${ms(sample.realProxyMs)}, metric ${ms(sample.convergenceMetricMs)}`);
      // Apart from the next change by more than any batch window.
      await sleep(250);
    }
    const changesCpu = meter();

    // The burst: distinct routes spread over every namespace, edited as fast as the source takes them.
    let burst: SourceRun['burst'] = null;
    if (options.burst > 0) {
      const picked = routes.filter((route) => !changed.has(route)).slice(-options.burst);
      const edits = picked.map((route, index) => [route, upstreams[0].url(`burst-${index}`)] as const);
      const before = await workers.stats();
      await workers.watch(edits.map(([route, url]) => [route.namespace, route.destinationId, url] as const));
      meter = cpuMeter(controller.pid, workers);
      const editAtMs = wallMs();
      await source.editMany(edits);
      const writeMs = wallMs() - editAtMs;
      const wait = await workers.waitWatched(timeoutMs);
      burst = {
        edits: edits.length,
        writeMs,
        lastAckMs: wait.complete ? wait.lastAtMs - editAtMs : null,
        proxiesInScope: wait.proxies,
        proxiesDone: wait.done,
        responsesPerProxy: (wait.stats.responses - before.responses) / Math.max(1, wait.proxies),
        cpu: meter(),
      };
      log(`${source.kind}: burst of ${edits.length} changes (written in ${(writeMs / 1000).toFixed(2)} s): last ACK ${burst.lastAckMs === null ? 'never' : `${(burst.lastAckMs / 1000).toFixed(2)} s`} (${wait.done}/${wait.proxies}), ${burst.responsesPerProxy.toFixed(2)} responses per proxy`);
    }

    // Idle: nothing changes. First let the controller finish what earlier changes left (status writes),
    // up to --settle-max, then read its CPU over --idle seconds.
    const settleStarted = performance.now();
    while ((performance.now() - settleStarted) / 1000 < options.settleMaxSeconds) {
      const before = treeCpuMicros([controller.pid]);
      await sleep(2_000);
      if ((treeCpuMicros([controller.pid]) - before) / 2e6 < 0.05) break;
    }
    const settleSeconds = (performance.now() - settleStarted) / 1000;
    meter = cpuMeter(controller.pid, workers);
    await sleep(options.idleSeconds * 1000);
    const idleCpu = meter();
    const idle = { settleSeconds, seconds: idleCpu.wallSeconds, cpuPercent: (idleCpu.controllerSeconds / idleCpu.wallSeconds) * 100, workerCpuPercent: (idleCpu.workerSeconds / idleCpu.wallSeconds) * 100 };
    log(`${source.kind}: idle controller CPU ${idle.cpuPercent.toFixed(1)} % of a core over ${idle.seconds.toFixed(0)} s (after ${settleSeconds.toFixed(0)} s settling)`);
    const memory = treeMemory([controller.pid]);
    log(`${source.kind}: controller peak RSS ${(memory.peakRssBytes / 1048576).toFixed(0)} MiB (now ${(memory.rssBytes / 1048576).toFixed(0)} MiB)`);
    const metricsBeforeWave = await scrape(controller.adminUrl);

    // The reconnect wave: every simulated stream closed, then --wave-proxies opened at once.
    const beforeWave = await workers.closeAll();
    let wave: SourceRun['wave'] = null;
    if (options.waveProxies > 0) {
      meter = cpuMeter(controller.pid, workers);
      const waveOpenedAtMs = await workers.open(endpoint, proxySpecs('wave', options.waveProxies, namespaces), tokens);
      // A controller killed by the guard ends the wait at once: nothing more will be served.
      const served = await Promise.race([workers.waitFirstTables(timeoutMs), guard.exited.then(() => workers.waitFirstTables(0))]);
      const killedAt = guard.tripped();
      const metricsAfterWave = killedAt === null ? await scrape(controller.adminUrl) : metricsBeforeWave;
      const slow = (metrics: typeof metricsAfterWave): number => metrics.value('fhirmesh_controller_slow_consumer_disconnects_total') ?? 0;
      wave = {
        proxies: options.waveProxies,
        ms: served.complete ? served.lastAtMs - waveOpenedAtMs : null,
        done: served.done,
        ends: served.stats.ends,
        endDetails: served.stats.endDetails,
        workerLoopDelayMaxMs: served.stats.loopDelayMaxMs,
        slowConsumerDisconnects: slow(metricsAfterWave) - slow(metricsBeforeWave),
        controllerPeakRssBytes: killedAt ?? treeMemory([controller.pid]).peakRssBytes,
        controllerKilledAtRssBytes: killedAt,
        cpu: meter(),
      };
      const dropped = Object.values(wave.ends).reduce((total, count) => total + count, 0);
      log(`${source.kind}: reconnect wave of ${wave.proxies}: ${served.done} served${wave.ms === null ? ' (TIMED OUT)' : ` in ${(wave.ms / 1000).toFixed(2)} s`}, ${dropped} streams dropped ${JSON.stringify(wave.ends)} ${JSON.stringify(wave.endDetails)}; workers' longest loop delay ${wave.workerLoopDelayMaxMs.toFixed(0)} ms`);
      await workers.closeAll();
    }

    // After the guard killed the controller the last metrics are those from before the wave.
    const final = guard.tripped() === null ? await scrape(controller.adminUrl) : metricsBeforeWave;
    const responses: Record<string, number> = {};
    for (const kind of ['full', 'delta', 'current']) responses[kind] = final.value('fhirmesh_controller_responses_total', { kind }) ?? 0;
    return {
      source: source.kind,
      routes: routes.length,
      namespaces: namespaces.length,
      proxies: options.proxies,
      setupMs: source.setupMs,
      controllerReadyMs: controller.readyMs,
      firstTables,
      realProxyReadyMs: realProxy.readyMs,
      changes,
      changesCpu,
      burst,
      idle,
      controllerPeakRssBytes: memory.peakRssBytes,
      controllerRssBytes: memory.rssBytes,
      beforeWave,
      wave,
      metrics: { nacks: final.value('fhirmesh_controller_nacks_total') ?? 0, slowConsumerDisconnects: final.value('fhirmesh_controller_slow_consumer_disconnects_total') ?? 0, responses },
      controllerLog: controller.logPath,
    };
  } finally {
    guard.stop();
    await realProxy?.stop();
    await workers.stop();
    await controller.stop();
  }
}
