// Turns the runs into per-target figures (mean over rounds, with the round-to-round range),
// the ratios the engine decision rests on, and the compact tables run.ts prints.
import type { EngineName } from './messages.ts';
import type { LoadCost, TargetRun } from './measure.ts';
import type { TargetName } from './options.ts';
import type { Scenario } from './scenarios.ts';

export interface Figure {
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** Half the min–max range over rounds, as a percentage of the mean (0 with one round). */
  readonly halfRangePercent: number;
}

export interface TargetSummary {
  readonly scenario: string;
  readonly target: TargetName;
  readonly rounds: number;
  readonly requestsPerSecond: Figure;
  readonly p50Ms: Figure;
  readonly p99Ms: Figure;
  readonly forwarderCpuMicrosPerRequest: Figure | null;
  readonly idleRssMB: Figure | null;
  readonly peakRssMB: Figure | null;
  readonly settledRssMB: Figure | null;
  readonly upstreamCpuMicrosPerRequest: Figure;
  readonly failedRequests: number;
  /** The worst round: CPU other processes used during the window, in cores. */
  readonly maxOtherCpuCores: number;
}

export interface Ratio {
  readonly scenario: string;
  readonly numerator: EngineName;
  readonly denominator: EngineName;
  readonly requestsPerSecond: number;
  readonly cpuPerRequest: number;
  readonly p50: number;
  readonly p99: number;
  readonly idleRss: number;
  readonly peakRss: number;
  /** True when the difference is smaller than the noise floor (see NOISE_FLOOR_PERCENT). */
  readonly requestsPerSecondWithinNoise: boolean;
  readonly cpuPerRequestWithinNoise: boolean;
}

// Below this, a difference between two engines is not called a difference, even when the
// rounds happened to agree more closely: loopback runs on a shared 2-core VM drift that much.
export const NOISE_FLOOR_PERCENT = 3;

export const COMPARISONS: readonly (readonly [EngineName, EngineName])[] = [
  ['undici', 'node-http'],
  ['http-proxy', 'node-http'],
  ['undici', 'http-proxy'],
];

const MB = 1024 * 1024;

function figure(values: readonly number[]): Figure {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { mean, min, max, halfRangePercent: mean === 0 ? 0 : ((max - min) / 2 / mean) * 100 };
}

function optionalFigure(values: readonly (number | undefined)[]): Figure | null {
  const present = values.filter((value): value is number => value !== undefined);
  return present.length === 0 ? null : figure(present);
}

export function summarize(runs: readonly TargetRun[], scenarios: readonly Scenario[], targets: readonly TargetName[]): TargetSummary[] {
  const summaries: TargetSummary[] = [];
  for (const scenario of scenarios) {
    for (const target of targets) {
      const mine = runs.filter((run) => run.scenario === scenario.name && run.target === target);
      if (mine.length === 0) continue;
      summaries.push({
        scenario: scenario.name,
        target,
        rounds: mine.length,
        requestsPerSecond: figure(mine.map((run) => run.requestsPerSecond)),
        p50Ms: figure(mine.map((run) => run.load.latencyMs.p50)),
        p99Ms: figure(mine.map((run) => run.load.latencyMs.p99)),
        forwarderCpuMicrosPerRequest: optionalFigure(mine.map((run) => run.forwarder?.cpuMicrosPerRequest)),
        idleRssMB: optionalFigure(mine.map((run) => (run.forwarder === null ? undefined : run.forwarder.idleRssBytes / MB))),
        peakRssMB: optionalFigure(mine.map((run) => (run.forwarder === null ? undefined : run.forwarder.peakRssBytes / MB))),
        settledRssMB: optionalFigure(mine.map((run) => (run.forwarder === null ? undefined : run.forwarder.settledRssBytes / MB))),
        upstreamCpuMicrosPerRequest: figure(mine.map((run) => run.upstreamCpuMicrosPerRequest)),
        failedRequests: mine.reduce((sum, run) => sum + run.load.errors + run.load.unexpectedStatus, 0),
        maxOtherCpuCores: Math.max(...mine.map((run) => run.otherCpuCores)),
      });
    }
  }
  return summaries;
}

function withinNoise(ratio: number, a: Figure, b: Figure): boolean {
  const differencePercent = Math.abs(ratio - 1) * 100;
  return differencePercent < Math.max(NOISE_FLOOR_PERCENT, a.halfRangePercent + b.halfRangePercent);
}

export function ratios(summaries: readonly TargetSummary[], scenarios: readonly Scenario[]): Ratio[] {
  const found: Ratio[] = [];
  for (const scenario of scenarios) {
    const of = (target: TargetName): TargetSummary | undefined => summaries.find((summary) => summary.scenario === scenario.name && summary.target === target);
    for (const [numerator, denominator] of COMPARISONS) {
      const a = of(numerator);
      const b = of(denominator);
      if (a === undefined || b === undefined) continue;
      const cpuA = a.forwarderCpuMicrosPerRequest as Figure;
      const cpuB = b.forwarderCpuMicrosPerRequest as Figure;
      const requestsPerSecond = a.requestsPerSecond.mean / b.requestsPerSecond.mean;
      const cpuPerRequest = cpuA.mean / cpuB.mean;
      found.push({
        scenario: scenario.name,
        numerator,
        denominator,
        requestsPerSecond,
        cpuPerRequest,
        p50: a.p50Ms.mean / b.p50Ms.mean,
        p99: a.p99Ms.mean / b.p99Ms.mean,
        idleRss: (a.idleRssMB as Figure).mean / (b.idleRssMB as Figure).mean,
        peakRss: (a.peakRssMB as Figure).mean / (b.peakRssMB as Figure).mean,
        requestsPerSecondWithinNoise: withinNoise(requestsPerSecond, a.requestsPerSecond, b.requestsPerSecond),
        cpuPerRequestWithinNoise: withinNoise(cpuPerRequest, cpuA, cpuB),
      });
    }
  }
  return found;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

function fixed(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function withRange(value: Figure | null, digits: number): string {
  if (value === null) return '—';
  return value.min === value.max ? fixed(value.mean, digits) : `${fixed(value.mean, digits)} ±${value.halfRangePercent.toFixed(1)}%`;
}

export function formatScenario(scenario: Scenario, summaries: readonly TargetSummary[], found: readonly Ratio[]): string {
  const mine = summaries.filter((summary) => summary.scenario === scenario.name);
  const figures = table(
    ['target', 'req/s', 'p50 ms', 'p99 ms', 'fwd CPU µs/req', 'idle RSS MB', 'peak RSS MB', 'failed', 'other load'],
    mine.map((summary) => [
      summary.target,
      withRange(summary.requestsPerSecond, 0),
      fixed(summary.p50Ms.mean, 3),
      fixed(summary.p99Ms.mean, 3),
      withRange(summary.forwarderCpuMicrosPerRequest, 1),
      withRange(summary.idleRssMB, 1),
      withRange(summary.peakRssMB, 1),
      String(summary.failedRequests),
      summary.maxOtherCpuCores.toFixed(2),
    ]),
  );
  const noiseMark = (ratio: number, noise: boolean): string => `${ratio.toFixed(2)}${noise ? '~' : ' '}`;
  const ratioRows = found
    .filter((ratio) => ratio.scenario === scenario.name)
    .map((ratio) => [
      `${ratio.numerator} / ${ratio.denominator}`,
      noiseMark(ratio.requestsPerSecond, ratio.requestsPerSecondWithinNoise),
      noiseMark(ratio.cpuPerRequest, ratio.cpuPerRequestWithinNoise),
      ratio.p50.toFixed(2),
      ratio.p99.toFixed(2),
      ratio.idleRss.toFixed(2),
      ratio.peakRss.toFixed(2),
    ]);
  const ratioTable = ratioRows.length === 0 ? '' : `\n\n${table(['ratio', 'req/s', 'CPU/req', 'p50', 'p99', 'idle RSS', 'peak RSS'], ratioRows)}`;
  return `${scenario.name}: ${scenario.description}\n\n${figures}${ratioTable}`;
}

export function formatLoadCost(costs: readonly LoadCost[], plainNodeRssBytes: number): string {
  return table(
    ['library loaded (.ts probe)', 'RSS before MB', 'RSS after MB', '+RSS MB', '+heap MB', 'loads bundled undici'],
    [
      ...costs.map((cost) => [
        cost.library,
        fixed(cost.rssBeforeBytes / MB, 1),
        fixed(cost.rssAfterBytes / MB, 1),
        fixed(cost.rssIncreaseBytes / MB, 1),
        fixed(cost.heapIncreaseBytes / MB, 1),
        cost.loadedBundledUndici ? 'yes' : 'no',
      ]),
      ['none, plain JS (no type stripping)', '', fixed(plainNodeRssBytes / MB, 1), '', '', ''],
    ],
  );
}
