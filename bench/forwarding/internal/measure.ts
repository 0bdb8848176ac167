// One measurement each: a target under one scenario's load, a library's load cost, a
// forwarder's conformance. Every process involved is a fresh child, except the upstream.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ChildHandle } from './child-process.ts';
import { checkConformance } from './conformance.ts';
import type { ConformanceResult } from './conformance.ts';
import { readMachineCpu, waitForQuietMachine } from './machine-load.ts';
import type { MachineCpu } from './machine-load.ts';
import type { EngineName, ForwarderArguments, LoadableLibrary, LoadResult, ProcessSample, UndiciApi } from './messages.ts';
import type { TargetName } from './options.ts';
import type { Scenario } from './scenarios.ts';

const execFileAsync = promisify(execFile);

export interface Upstream {
  readonly handle: ChildHandle;
  readonly port: number;
}

export interface ForwarderFigures {
  readonly idleRssBytes: number;
  readonly peakRssBytes: number;
  /** RSS after the load and a full GC: what the pools, buffers and JIT code keep. */
  readonly settledRssBytes: number;
  readonly settled: ProcessSample;
  readonly cpuMicrosPerRequest: number;
}

export interface TargetRun {
  readonly round: number;
  readonly scenario: string;
  readonly target: TargetName;
  readonly requestsPerSecond: number;
  readonly load: LoadResult;
  readonly forwarder: ForwarderFigures | null;
  readonly upstreamCpuMicrosPerRequest: number;
  readonly loadGeneratorCpuMicrosPerRequest: number;
  /**
   * CPU the rest of the machine used during the window, in cores: everything busy minus our
   * processes. Loopback softirq work not charged to our processes lands here too, so a few
   * hundredths are normal; much more means other work competed with the measurement.
   */
  readonly otherCpuCores: number;
  /** How long the run waited for the machine to go quiet, and how busy it was then. */
  readonly quietWait: { readonly waitedMs: number; readonly busyCores: number };
  /** otherCpuCores of earlier attempts at this run that were thrown away as too noisy. */
  readonly discardedAttempts: readonly number[];
}

export interface LoadCost {
  readonly library: LoadableLibrary;
  readonly samples: number;
  /** Medians over the samples, each in a fresh process. */
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly rssIncreaseBytes: number;
  readonly heapIncreaseBytes: number;
  readonly loadedBundledUndici: boolean;
}

export async function startUpstream(): Promise<Upstream> {
  const handle = ChildHandle.start('upstream', 'upstream.ts', [], []);
  const listening = await handle.waitFor('listening');
  return { handle, port: listening.port };
}

async function startForwarder(
  engine: EngineName,
  upstreamPort: number,
  undiciApi: UndiciApi,
  nodeOptions: readonly string[],
): Promise<{ handle: ChildHandle; port: number; idle: ProcessSample }> {
  const args: ForwarderArguments = { engine, upstreamPort, undiciApi };
  const handle = ChildHandle.start(`forwarder ${engine}`, 'forwarder.ts', [JSON.stringify(args)], nodeOptions);
  const listening = await handle.waitFor('listening');
  return { handle, port: listening.port, idle: listening.idle };
}

function cpuMicros(sample: ProcessSample): number {
  return sample.cpuUserMicros + sample.cpuSystemMicros;
}

/** In a forwarder of its own, so that the probe traffic does not touch the measured ones. */
export async function checkEngine(engine: EngineName, upstreamPort: number, undiciApi: UndiciApi, nodeOptions: readonly string[]): Promise<ConformanceResult> {
  const forwarder = await startForwarder(engine, upstreamPort, undiciApi, nodeOptions);
  try {
    return await checkConformance(forwarder.port, upstreamPort);
  } finally {
    await forwarder.handle.stop();
  }
}

export interface TargetRunRequest {
  readonly round: number;
  readonly scenario: Scenario;
  readonly target: TargetName;
  readonly upstream: Upstream;
  readonly undiciApi: UndiciApi;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly quietBelowCores: number;
  readonly quietMaxWaitMs: number;
  readonly maxOtherCpuCores: number;
  readonly attempts: number;
  readonly forwarderNodeOptions: readonly string[];
}

interface WindowEdge {
  readonly forwarder: ProcessSample | null;
  readonly upstream: ProcessSample;
  readonly machine: MachineCpu;
  readonly runnerCpuMicros: number;
}

/**
 * Measures until a window is clean: one in which the rest of the machine used at most
 * maxOtherCpuCores. After `attempts` noisy windows, keeps the least noisy one.
 */
export async function measureTarget(request: TargetRunRequest): Promise<TargetRun> {
  const noisy: TargetRun[] = [];
  for (let attempt = 1; attempt <= request.attempts; attempt += 1) {
    const run = await measureOnce(request);
    if (run.otherCpuCores <= request.maxOtherCpuCores) return { ...run, discardedAttempts: noisy.map((earlier) => earlier.otherCpuCores) };
    noisy.push(run);
  }
  const quietest = noisy.reduce((best, run) => (run.otherCpuCores < best.otherCpuCores ? run : best));
  return { ...quietest, discardedAttempts: noisy.filter((run) => run !== quietest).map((run) => run.otherCpuCores) };
}

async function measureOnce(request: TargetRunRequest): Promise<TargetRun> {
  const { scenario, target, upstream } = request;
  const quietWait = await waitForQuietMachine(request.quietBelowCores, request.quietMaxWaitMs);
  const forwarder = target === 'direct' ? null : await startForwarder(target, upstream.port, request.undiciApi, request.forwarderNodeOptions);
  const loadGenerator = ChildHandle.start('load generator', 'load-generator.ts', [], []);
  try {
    await loadGenerator.waitFor('ready');
    // Sample the processes under test when the load generator opens and closes its window.
    const sampleEdge = async (): Promise<WindowEdge> => {
      const machine = readMachineCpu();
      const runner = process.cpuUsage();
      const [forwarderSample, upstreamSample] = await Promise.all([forwarder === null ? null : forwarder.handle.stats(), upstream.handle.stats()]);
      return { forwarder: forwarderSample, upstream: upstreamSample, machine, runnerCpuMicros: runner.user + runner.system };
    };
    const atStart = loadGenerator.waitFor('measure-start').then(sampleEdge);
    const atEnd = loadGenerator.waitFor('measure-end').then(sampleEdge);
    const result = loadGenerator.waitFor('load-result');
    loadGenerator.send({
      type: 'start-load',
      config: {
        targetPort: forwarder?.port ?? upstream.port,
        method: scenario.method,
        path: scenario.path,
        requestBodyBytes: scenario.requestBodyBytes,
        expectedStatus: scenario.expectedStatus,
        concurrency: scenario.concurrency,
        requestsPerSecond: scenario.requestsPerSecond,
        warmupMs: request.warmupMs,
        durationMs: request.durationMs,
      },
    });
    const [{ result: load }, start, end] = await Promise.all([result, atStart, atEnd]);
    const perRequest = (micros: number): number => (load.completed === 0 ? 0 : micros / load.completed);

    let forwarderFigures: ForwarderFigures | null = null;
    let forwarderCpuMicros = 0;
    if (forwarder !== null && start.forwarder !== null && end.forwarder !== null) {
      forwarderCpuMicros = cpuMicros(end.forwarder) - cpuMicros(start.forwarder);
      const settled = await forwarder.handle.stats(true);
      forwarderFigures = {
        idleRssBytes: forwarder.idle.rssBytes,
        peakRssBytes: settled.peakRssBytes,
        settledRssBytes: settled.rssBytes,
        settled,
        cpuMicrosPerRequest: perRequest(forwarderCpuMicros),
      };
    }
    const upstreamCpuMicros = cpuMicros(end.upstream) - cpuMicros(start.upstream);
    const ourCpuMicros = forwarderCpuMicros + upstreamCpuMicros + load.loadGeneratorCpuMicros + (end.runnerCpuMicros - start.runnerCpuMicros);
    const machineBusyMicros = end.machine.busyMicros - start.machine.busyMicros;
    return {
      round: request.round,
      scenario: scenario.name,
      target,
      requestsPerSecond: load.completed / (load.windowMs / 1000),
      load,
      forwarder: forwarderFigures,
      upstreamCpuMicrosPerRequest: perRequest(upstreamCpuMicros),
      loadGeneratorCpuMicrosPerRequest: perRequest(load.loadGeneratorCpuMicros),
      otherCpuCores: Math.max(0, machineBusyMicros - ourCpuMicros) / (load.windowMs * 1000),
      quietWait,
      discardedAttempts: [],
    };
  } finally {
    await loadGenerator.stop();
    await forwarder?.handle.stop();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export async function measureLoadCost(library: LoadableLibrary, samples: number): Promise<LoadCost> {
  const befores: number[] = [];
  const afters: number[] = [];
  const rssIncreases: number[] = [];
  const heapIncreases: number[] = [];
  let loadedBundledUndici = false;
  for (let i = 0; i < samples; i += 1) {
    const probe = ChildHandle.start(`load-cost ${library}`, 'load-cost.ts', [library], []);
    try {
      const { before, after, loadedBundledUndici: loadedIt } = await probe.waitFor('load-cost');
      loadedBundledUndici ||= loadedIt;
      befores.push(before.rssBytes);
      afters.push(after.rssBytes);
      rssIncreases.push(after.rssBytes - before.rssBytes);
      heapIncreases.push(after.heapUsedBytes - before.heapUsedBytes);
    } finally {
      await probe.stop();
    }
  }
  return {
    library,
    samples,
    rssBeforeBytes: median(befores),
    rssAfterBytes: median(afters),
    rssIncreaseBytes: median(rssIncreases),
    heapIncreaseBytes: median(heapIncreases),
    loadedBundledUndici,
  };
}

// The same probe with nothing imported, but as a plain JavaScript -e script: the difference
// from the `none` row is what running TypeScript by type stripping costs a process.
const PLAIN_BASELINE_SCRIPT = `
const { readFileSync } = require('node:fs');
globalThis.gc();
setTimeout(() => {
  globalThis.gc();
  const kB = Number(/^VmRSS:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  process.stdout.write(String(kB * 1024));
}, 400);`;

export async function measurePlainNodeRss(samples: number): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', '-e', PLAIN_BASELINE_SCRIPT]);
    values.push(Number(stdout));
  }
  return median(values);
}
