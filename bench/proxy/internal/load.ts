// The load generators, on the load core: wrk for saturation (closed loop, as fast as the
// contender goes) and fortio for a constant 1,000 req/s, uniform or bursty. Each run returns
// what the generator saw plus the contender's CPU over exactly that run, from /proc.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMachineCpu } from '../../forwarding/internal/machine-load.ts';
import { DESTINATION, SEARCH_PATH } from './fixtures.ts';
import { exitOf, LOAD_CORE, reapedChildrenCpuMicros, startPinned, treeCpuMicros, treeStatCpuMicros } from './processes.ts';
import type { Tools } from './tools.ts';

export interface Latency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface LoadRun {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly windowMs: number;
  /** Connect/read/write errors, timeouts and non-2xx answers. */
  readonly failures: number;
  readonly latency: Latency;
  /** From the scheduler's per-thread run time (see processes.ts). */
  readonly contenderCpuMicros: number;
  readonly contenderCpuMicrosPerRequest: number;
  /** The same from utime + stime in /proc/<pid>/stat (tick-sampled): a cross-check. */
  readonly contenderStatCpuMicros: number;
  /** Contender CPU over the window, in cores. */
  readonly contenderCores: number;
  readonly loadGeneratorCpuMicros: number;
  /**
   * CPU the rest of the machine used over the window, in cores: everything busy minus the
   * contender, the upstream, the load generator and this runner. Loopback softirq work not
   * charged to a process lands here too, so a few hundredths are normal.
   */
  readonly otherCores: number;
}

export interface LoadTarget {
  readonly port: number;
  /** Processes whose CPU is the contender's (empty for direct). */
  readonly contenderPids: readonly number[];
  readonly upstreamPid: number;
}

interface WindowStart {
  readonly contender: number;
  readonly contenderStat: number;
  readonly upstream: number;
  readonly reaped: number;
  readonly runner: number;
  readonly machine: ReturnType<typeof readMachineCpu>;
  readonly wallMs: number;
}

function windowStart(target: LoadTarget): WindowStart {
  const runner = process.cpuUsage();
  return {
    contender: treeCpuMicros(target.contenderPids),
    contenderStat: treeStatCpuMicros(target.contenderPids),
    upstream: treeCpuMicros([target.upstreamPid]),
    reaped: reapedChildrenCpuMicros(),
    runner: runner.user + runner.system,
    machine: readMachineCpu(),
    wallMs: Date.now(),
  };
}

interface WindowCpu {
  readonly contenderCpuMicros: number;
  readonly contenderStatCpuMicros: number;
  readonly loadGeneratorCpuMicros: number;
  readonly otherCores: number;
  readonly wallMs: number;
}

function windowEnd(target: LoadTarget, start: WindowStart): WindowCpu {
  const runner = process.cpuUsage();
  const machine = readMachineCpu();
  const wallMs = Date.now() - start.wallMs;
  const contenderCpuMicros = treeCpuMicros(target.contenderPids) - start.contender;
  const contenderStatCpuMicros = treeStatCpuMicros(target.contenderPids) - start.contenderStat;
  const upstreamCpuMicros = treeCpuMicros([target.upstreamPid]) - start.upstream;
  // The generator has exited and been reaped by now: its CPU is in this process's cutime/cstime.
  const loadGeneratorCpuMicros = reapedChildrenCpuMicros() - start.reaped;
  const ours = contenderCpuMicros + upstreamCpuMicros + loadGeneratorCpuMicros + (runner.user + runner.system - start.runner);
  const busy = machine.busyMicros - start.machine.busyMicros;
  return { contenderCpuMicros, contenderStatCpuMicros, loadGeneratorCpuMicros, otherCores: Math.max(0, busy - ours) / (wallMs * 1000), wallMs };
}

function collectOutput(command: string, args: readonly string[], name: string): Promise<string> {
  const child = startPinned(name, command, args, { core: LOAD_CORE, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return exitOf(child, name).then(
    () => output,
    (error: Error) => {
      throw new Error(`${error.message}:\n${output.trim()}`);
    },
  );
}

// Prints wrk's summary as one JSON line; with a destination count, spreads the requests over
// that many destinations at random (the route sweep), else every request goes to DESTINATION.
function wrkScript(destinations: number): string {
  const summary = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"wrkSummary":true,"requests":%.0f,"durationUs":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,"p50Us":%.1f,"p99Us":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;
  if (destinations <= 1) return `wrk.headers["X-Destination"] = "${DESTINATION}"\n${summary}`;
  return `
math.randomseed(12345)
request = function()
  local i = math.random(0, ${destinations - 1})
  wrk.headers["X-Destination"] = i == 0 and "${DESTINATION}" or string.format("dest-%06d", i)
  return wrk.format()
end
${summary}`;
}

export interface SaturationRequest {
  readonly tools: Tools;
  readonly target: LoadTarget;
  readonly workDir: string;
  readonly durationSeconds: number;
  readonly connections: number;
  /** 1: every request to DESTINATION; more: spread over that many destinations. */
  readonly destinations: number;
}

/** wrk, one thread, closed loop: the contender's highest rate with its core to itself. */
export async function runSaturation(request: SaturationRequest): Promise<LoadRun> {
  const scriptPath = join(request.workDir, `wrk-${request.destinations}.lua`);
  writeFileSync(scriptPath, wrkScript(request.destinations));
  const args = ['-t1', `-c${request.connections}`, `-d${request.durationSeconds}s`, '--timeout', '5s', '-s', scriptPath, `http://127.0.0.1:${request.target.port}${SEARCH_PATH}`];
  const start = windowStart(request.target);
  const output = await collectOutput(request.tools.wrk, args, 'wrk');
  const cpu = windowEnd(request.target, start);
  const line = output.split('\n').find((candidate) => candidate.startsWith('{"wrkSummary"'));
  if (line === undefined) throw new Error(`wrk printed no summary:\n${output}`);
  const summary = JSON.parse(line) as Record<string, number>;
  const requests = summary.requests ?? 0;
  const windowMs = (summary.durationUs ?? 0) / 1000;
  const failures = (summary.connect ?? 0) + (summary.read ?? 0) + (summary.write ?? 0) + (summary.status ?? 0) + (summary.timeout ?? 0);
  return {
    requests,
    requestsPerSecond: requests / (windowMs / 1000),
    windowMs,
    failures,
    latency: { p50Ms: (summary.p50Us ?? 0) / 1000, p99Ms: (summary.p99Us ?? 0) / 1000 },
    contenderCpuMicros: cpu.contenderCpuMicros,
    contenderCpuMicrosPerRequest: requests === 0 ? 0 : cpu.contenderCpuMicros / requests,
    contenderStatCpuMicros: cpu.contenderStatCpuMicros,
    contenderCores: cpu.contenderCpuMicros / (cpu.wallMs * 1000),
    loadGeneratorCpuMicros: cpu.loadGeneratorCpuMicros,
    otherCores: cpu.otherCores,
  };
}

export type Arrivals = 'uniform' | 'bursty';

export interface RateRequest {
  readonly tools: Tools;
  readonly target: LoadTarget;
  readonly workDir: string;
  readonly durationSeconds: number;
  readonly requestsPerSecond: number;
  readonly connections: number;
  /**
   * uniform: fortio -uniform staggers the connections' sends evenly. bursty: fortio's default,
   * every connection sends at the same instants, so `connections` requests arrive together.
   */
  readonly arrivals: Arrivals;
}

interface FortioResult {
  readonly ActualQPS: number;
  readonly ActualDuration: number;
  readonly DurationHistogram: { readonly Count: number; readonly Percentiles: readonly { readonly Percentile: number; readonly Value: number }[] };
  readonly RetCodes: Readonly<Record<string, number>>;
  readonly SocketCount: number;
}

/** fortio at a fixed rate; latency from each request's send to its last byte. */
export async function runRate(request: RateRequest): Promise<LoadRun & { readonly sockets: number }> {
  const jsonPath = join(request.workDir, `fortio-${request.arrivals}.json`);
  const args = [
    'load',
    '-qps', String(request.requestsPerSecond),
    '-c', String(request.connections),
    '-t', `${request.durationSeconds}s`,
    // 10 µs histogram buckets: the default 1 ms would round every proxy's p50 to the same bucket.
    '-r', '0.00001',
    '-p', '50,99',
    '-json', jsonPath,
    '-quiet',
    '-H', `X-Destination: ${DESTINATION}`,
    ...(request.arrivals === 'uniform' ? ['-uniform'] : []),
    `http://127.0.0.1:${request.target.port}${SEARCH_PATH}`,
  ];
  const start = windowStart(request.target);
  await collectOutput(request.tools.fortio, args, 'fortio');
  const cpu = windowEnd(request.target, start);
  const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as FortioResult;
  const percentile = (wanted: number): number => (result.DurationHistogram.Percentiles.find((entry) => entry.Percentile === wanted)?.Value ?? NaN) * 1000;
  const requests = result.DurationHistogram.Count;
  const ok = result.RetCodes['200'] ?? 0;
  const perRequest = requests === 0 ? 0 : cpu.contenderCpuMicros / requests;
  return {
    requests,
    requestsPerSecond: result.ActualQPS,
    windowMs: result.ActualDuration / 1e6,
    failures: requests - ok,
    latency: { p50Ms: percentile(50), p99Ms: percentile(99) },
    contenderCpuMicros: cpu.contenderCpuMicros,
    contenderCpuMicrosPerRequest: perRequest,
    contenderStatCpuMicros: cpu.contenderStatCpuMicros,
    // Per request × the rate achieved: fortio's start-up and warm-up are not part of the window.
    contenderCores: (perRequest * result.ActualQPS) / 1e6,
    loadGeneratorCpuMicros: cpu.loadGeneratorCpuMicros,
    otherCores: cpu.otherCores,
    sockets: result.SocketCount,
  };
}

/** Runs `command` to completion on the load core (the streaming client), returning its stdout. */
export function runOnLoadCore(command: string, args: readonly string[], name: string): Promise<string> {
  return collectOutput(command, args, name);
}
