// Turns the runs into issue 9's comparison: medians over rounds (latency added over direct is
// taken per round, then the median), the ratios to nginx, and each target with whether
// fhirmesh meets it. One Markdown table, so it can go into docs/performance.md as printed.
import type { ContenderRun } from './measure-contender.ts';
import type { BenchOptions, SweepMode } from './options.ts';
import type { StreamingRun } from './streaming.ts';
import type { SweepRun } from './sweep.ts';

const MIB = 1024 * 1024;
/** CPU per request may differ this much across table sizes and still count as flat. */
const FLAT_WITHIN = 1.15;

export interface ContenderSummary {
  readonly contender: string;
  readonly rounds: number;
  readonly saturationRequestsPerSecond: number;
  readonly cpuMicrosPerRequest: number;
  /** 1e6 / CPU µs per request, over nginx's: requests one core could carry, relative to nginx. */
  readonly perCoreVsNginx: number;
  readonly requestsPerSecondVsNginx: number;
  readonly vcpuAtRate: { readonly uniform: number; readonly bursty: number };
  readonly latencyMs: { readonly uniform: { readonly p50: number; readonly p99: number }; readonly bursty: { readonly p50: number; readonly p99: number } };
  /** Over direct, per round then the median; null for direct itself. */
  readonly addedLatencyMs: { readonly uniform: { readonly p50: number; readonly p99: number }; readonly bursty: { readonly p50: number; readonly p99: number } } | null;
  readonly idleRssBytes: number;
  readonly peakRssBytes: number;
  readonly failures: number;
  readonly conformanceFailures: readonly string[];
  readonly maxUpstreamConnectionsOpened: number;
  readonly maxOtherCores: number;
  readonly accessLogLines: number | null;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function summarize(runs: readonly ContenderRun[], contenders: readonly string[]): Record<string, ContenderSummary> {
  const byName = (name: string): ContenderRun[] => runs.filter((run) => run.contender === name);
  const directByRound = new Map(byName('direct').map((run) => [run.round, run]));
  const nginxCpu = median(byName('nginx').map((run) => run.saturation.contenderCpuMicrosPerRequest));
  const nginxRps = median(byName('nginx').map((run) => run.saturation.requestsPerSecond));
  const summaries: Record<string, ContenderSummary> = {};
  for (const name of contenders) {
    const own = byName(name);
    if (own.length === 0) continue;
    const cpu = median(own.map((run) => run.saturation.contenderCpuMicrosPerRequest));
    const rps = median(own.map((run) => run.saturation.requestsPerSecond));
    const added = (arrivals: 'uniform' | 'bursty', pick: 'p50Ms' | 'p99Ms'): number =>
      median(own.flatMap((run) => {
        const direct = directByRound.get(run.round);
        return direct === undefined ? [] : [run.rates[arrivals].latency[pick] - direct.rates[arrivals].latency[pick]];
      }));
    const windows = own.flatMap((run) => [run.saturation, run.rates.uniform, run.rates.bursty]);
    const accessLines = own.map((run) => run.accessLogLines);
    summaries[name] = {
      contender: name,
      rounds: own.length,
      saturationRequestsPerSecond: rps,
      cpuMicrosPerRequest: cpu,
      perCoreVsNginx: nginxCpu / cpu,
      requestsPerSecondVsNginx: rps / nginxRps,
      vcpuAtRate: { uniform: median(own.map((run) => run.rates.uniform.contenderCores)), bursty: median(own.map((run) => run.rates.bursty.contenderCores)) },
      latencyMs: {
        uniform: { p50: median(own.map((run) => run.rates.uniform.latency.p50Ms)), p99: median(own.map((run) => run.rates.uniform.latency.p99Ms)) },
        bursty: { p50: median(own.map((run) => run.rates.bursty.latency.p50Ms)), p99: median(own.map((run) => run.rates.bursty.latency.p99Ms)) },
      },
      addedLatencyMs: name === 'direct' ? null : {
        uniform: { p50: added('uniform', 'p50Ms'), p99: added('uniform', 'p99Ms') },
        bursty: { p50: added('bursty', 'p50Ms'), p99: added('bursty', 'p99Ms') },
      },
      idleRssBytes: median(own.map((run) => run.idle.rssBytes)),
      peakRssBytes: median(own.map((run) => run.end.peakRssBytes)),
      failures: windows.reduce((sum, window) => sum + window.failures, 0),
      conformanceFailures: [...new Set(own.flatMap((run) => run.conformanceFailures))],
      maxUpstreamConnectionsOpened: Math.max(...own.map((run) => run.upstreamConnectionsOpened)),
      maxOtherCores: Math.max(...windows.map((window) => window.otherCores)),
      accessLogLines: accessLines.every((lines) => lines === null) ? null : accessLines.reduce<number>((sum, lines) => sum + (lines ?? 0), 0),
    };
  }
  return summaries;
}

/** A variant against its base, paired by round: relative req/s change and extra vCPU at the rate. */
export interface VariantCost {
  readonly requestsPerSecondChangePercent: number;
  readonly extraVcpuAtRate: number;
}

export function variantCost(runs: readonly ContenderRun[], variant: string, base: string): VariantCost | null {
  const baseByRound = new Map(runs.filter((run) => run.contender === base).map((run) => [run.round, run]));
  const pairs = runs.filter((run) => run.contender === variant).flatMap((run) => {
    const other = baseByRound.get(run.round);
    return other === undefined ? [] : [[run, other] as const];
  });
  if (pairs.length === 0) return null;
  return {
    requestsPerSecondChangePercent: median(pairs.map(([on, off]) => (on.saturation.requestsPerSecond / off.saturation.requestsPerSecond - 1) * 100)),
    extraVcpuAtRate: median(pairs.map(([on, off]) => on.rates.uniform.contenderCores - off.rates.uniform.contenderCores)),
  };
}

const COLUMNS = ['fhirmesh', 'nginx', 'haproxy', 'node-http', 'undici', 'direct'] as const;
const HEADINGS: Readonly<Record<(typeof COLUMNS)[number], string>> = {
  fhirmesh: 'fhirmesh (no access log)',
  nginx: 'nginx',
  haproxy: 'HAProxy',
  'node-http': 'node:http floor',
  undici: 'undici floor',
  direct: 'direct',
};

interface Row {
  readonly figure: string;
  readonly cells: Partial<Record<(typeof COLUMNS)[number], string>>;
  readonly target: string;
  /** fhirmesh against the target: 'met', 'not met (...)', or 'n/a'. */
  readonly verdict: string;
}

const integer = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const mebibytes = (bytes: number): string => (Number.isFinite(bytes) ? (bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0) : '–');
const verdictOf = (met: boolean | null, detail: string): string => (met === null ? 'n/a' : met ? `met (${detail})` : `not met (${detail})`);

export interface Report {
  readonly markdown: string;
  readonly rows: readonly Row[];
}

export function buildReport(
  summaries: Readonly<Record<string, ContenderSummary>>,
  runs: readonly ContenderRun[],
  sweep: readonly SweepRun[],
  streaming: readonly StreamingRun[],
  options: BenchOptions,
): Report {
  const get = (name: string): ContenderSummary | undefined => summaries[name];
  const per = (pick: (summary: ContenderSummary) => string): Row['cells'] => {
    const cells: Row['cells'] = {};
    for (const column of COLUMNS) {
      const summary = get(column);
      if (summary !== undefined) cells[column] = pick(summary);
    }
    return cells;
  };
  const fhirmesh = get('fhirmesh');
  const nginx = get('nginx');
  const rows: Row[] = [];
  // A verdict resting on windows that ran beside other work says so.
  const noisyMark = (otherCores: readonly number[]): string => (otherCores.some((cores) => cores > options.maxOtherCores) ? ' · noisy' : '');
  const noisyAmong = (...names: string[]): string => noisyMark(names.map((name) => get(name)?.maxOtherCores ?? 0));

  rows.push({
    figure: 'saturation req/s, proxy on one core (× nginx)',
    cells: per((s) => (s.contender === 'nginx' || s.contender === 'direct' ? integer(s.saturationRequestsPerSecond) : `${integer(s.saturationRequestsPerSecond)} (${fixed(s.requestsPerSecondVsNginx, 2)})`)),
    target: '',
    verdict: '',
  });
  rows.push({
    figure: 'CPU per request at saturation',
    cells: per((s) => (s.contender === 'direct' ? '–' : `${fixed(s.cpuMicrosPerRequest, 1)} µs`)),
    target: '≤ 34 µs',
    verdict: fhirmesh === undefined ? 'n/a' : verdictOf(fhirmesh.cpuMicrosPerRequest <= 34, `${fixed(fhirmesh.cpuMicrosPerRequest / 34, 2)} × target`) + noisyAmong('fhirmesh'),
  });
  rows.push({
    figure: 'per core × nginx (1e6 / CPU µs per request)',
    cells: per((s) => (s.contender === 'direct' ? '–' : fixed(s.perCoreVsNginx, 2))),
    target: '≥ 0.40 × nginx',
    verdict: fhirmesh === undefined ? 'n/a' : verdictOf(fhirmesh.perCoreVsNginx >= 0.4, `${fixed(fhirmesh.perCoreVsNginx, 2)}`) + noisyAmong('fhirmesh', 'nginx'),
  });
  rows.push({
    figure: `vCPU at a constant ${integer(options.rate)} req/s, uniform / bursty`,
    cells: per((s) => (s.contender === 'direct' ? '–' : `${fixed(s.vcpuAtRate.uniform, 3)} / ${fixed(s.vcpuAtRate.bursty, 3)}`)),
    target: '≤ 0.05 (Istio\'s Envoy sidecar: ~0.20)',
    verdict: fhirmesh === undefined ? 'n/a' : verdictOf(fhirmesh.vcpuAtRate.uniform <= 0.05, `${fixed(fhirmesh.vcpuAtRate.uniform / 0.05, 1)} × target`) + noisyAmong('fhirmesh'),
  });
  for (const arrivals of ['uniform', 'bursty'] as const) {
    const label = arrivals === 'uniform' ? 'uniform arrivals' : `${options.rateConnections} connections firing together`;
    const fhirmeshAdded = fhirmesh?.addedLatencyMs?.[arrivals];
    const nginxAdded = nginx?.addedLatencyMs?.[arrivals];
    let verdict = 'n/a';
    if (fhirmeshAdded !== undefined && nginxAdded !== undefined) {
      const p50Ratio = fhirmeshAdded.p50 / nginxAdded.p50;
      const p99Ratio = fhirmeshAdded.p99 / nginxAdded.p99;
      // nginx adding nothing measurable (≤ 0) makes any ratio meaningless on this run.
      if (nginxAdded.p50 <= 0 || nginxAdded.p99 <= 0) verdict = 'n/a (nginx added ≤ 0: noise)';
      else verdict = verdictOf(p50Ratio <= 1.5 && p99Ratio <= 2, `${fixed(p50Ratio, 1)} × / ${fixed(p99Ratio, 1)} × nginx's`) + noisyAmong('fhirmesh', 'nginx', 'direct');
    }
    rows.push({
      figure: `added p50 / p99 at ${integer(options.rate)} req/s, ${label}`,
      cells: per((s) => {
        if (s.addedLatencyMs === null) return `(${fixed(s.latencyMs[arrivals].p50, 2)} / ${fixed(s.latencyMs[arrivals].p99, 2)} ms)`;
        return `${fixed(s.addedLatencyMs[arrivals].p50, 2)} / ${fixed(s.addedLatencyMs[arrivals].p99, 2)} ms`;
      }),
      target: '≤ 1.5 × / ≤ 2 × nginx\'s',
      verdict,
    });
  }
  rows.push({
    figure: 'idle / peak RSS, 10 routes',
    cells: per((s) => (s.contender === 'direct' ? '–' : `${mebibytes(s.idleRssBytes)} / ${mebibytes(s.peakRssBytes)} MiB`)),
    target: '',
    verdict: '',
  });

  for (const mode of ['file', 'controller'] as SweepMode[]) {
    const points = sweep.filter((point) => point.mode === mode).sort((a, b) => a.routes - b.routes);
    if (points.length === 0) continue;
    const sizes = points.map((point) => integer(point.routes)).join(' / ');
    const modeLabel = mode === 'file' ? 'routes file' : 'controller';
    const at = (routes: number): SweepRun | undefined => points.find((point) => point.routes === routes);
    const tenThousand = at(10_000);
    const hundredThousand = at(100_000);
    const rssParts: string[] = [];
    let rssMet: boolean | null = null;
    if (tenThousand !== undefined) {
      rssParts.push(`${mebibytes(tenThousand.end.peakRssBytes)} MiB peak at 10,000`);
      rssMet = tenThousand.end.peakRssBytes <= 64 * MIB;
    }
    if (hundredThousand !== undefined) {
      rssParts.push(`${mebibytes(hundredThousand.end.peakRssBytes)} MiB at 100,000`);
      rssMet = (rssMet ?? true) && hundredThousand.end.peakRssBytes <= 128 * MIB;
    }
    rows.push({
      figure: `RSS when ready / peak, ${sizes} routes (${modeLabel})`,
      cells: { fhirmesh: points.map((point) => `${mebibytes(point.ready.rssBytes)} / ${mebibytes(point.end.peakRssBytes)}`).join(' · ') + ' MiB' },
      target: '≤ 64 MiB at 10,000 / ≤ 128 MiB at 100,000',
      verdict: verdictOf(rssMet, rssParts.join(', ')),
    });
    const largest = points[points.length - 1] as SweepRun;
    rows.push({
      figure: `time to ready, ${sizes} routes (${modeLabel})`,
      cells: { fhirmesh: points.map((point) => `${fixed(point.readyMs / 1000, 2)}`).join(' / ') + ' s' },
      target: '≤ 3 s with 100,000 routes',
      verdict: hundredThousand === undefined ? `n/a (largest ${integer(largest.routes)})` : verdictOf(hundredThousand.readyMs <= 3_000, `${fixed(hundredThousand.readyMs / 1000, 1)} s`),
    });
    const costs = points.map((point) => point.saturation.contenderCpuMicrosPerRequest);
    const spread = Math.max(...costs) / Math.min(...costs);
    rows.push({
      figure: `CPU per request over all destinations, ${sizes} routes (${modeLabel})`,
      cells: { fhirmesh: costs.map((cost) => fixed(cost, 1)).join(' / ') + ' µs' },
      target: 'flat',
      verdict: points.length < 2 ? 'n/a' : verdictOf(spread <= FLAT_WITHIN, `max / min ${fixed(spread, 2)}`) + noisyMark(points.map((point) => point.saturation.otherCores)),
    });
  }

  if (streaming.length > 0) {
    const cells: Row['cells'] = {};
    for (const run of streaming) {
      const column = COLUMNS.find((name) => name === run.contender);
      if (column === undefined) continue;
      const mark = (direction: StreamingRun['up']): string => `${direction.complete ? '' : '(incomplete) '}+${mebibytes(direction.rssGrowthBytes)}`;
      cells[column] = `${mark(run.up)} / ${mark(run.down)} MiB`;
    }
    const fhirmeshRun = streaming.find((run) => run.contender === 'fhirmesh');
    const worst = fhirmeshRun === undefined ? null : Math.max(fhirmeshRun.up.rssGrowthBytes, fhirmeshRun.down.rssGrowthBytes);
    const gib = options.streamBytes / 1024 / 1024 / 1024;
    rows.push({
      figure: `RSS growth streaming ${gib >= 1 ? `${fixed(gib, gib % 1 === 0 ? 0 : 1)} GiB` : `${integer(options.streamBytes / MIB)} MiB`} up / down`,
      cells,
      target: '≤ 16 MiB (for 1 GiB)',
      verdict: worst === null ? 'n/a' : verdictOf(worst <= 16 * MIB, `+${mebibytes(worst)} MiB worst`),
    });
  }

  const signed = (value: number, digits: number): string => `${value >= 0 ? '+' : '−'}${fixed(Math.abs(value), digits)}`;
  const costCell = (cost: VariantCost): string => `${signed(cost.requestsPerSecondChangePercent, 1)} % req/s, ${signed(cost.extraVcpuAtRate, 3)} vCPU`;
  const accessLog = variantCost(runs, 'fhirmesh-access-log', 'fhirmesh');
  const loss = accessLog === null ? NaN : -accessLog.requestsPerSecondChangePercent;
  rows.push({
    figure: `with the access log on (vs off): saturation req/s, vCPU at ${integer(options.rate)} req/s`,
    cells: { fhirmesh: accessLog === null ? 'n/a' : costCell(accessLog) },
    target: '≤ 3 %',
    verdict: accessLog === null ? 'n/a' : verdictOf(loss <= 3, loss <= 0 ? 'no loss measured' : `${fixed(loss, 1)} % fewer req/s`) + noisyAmong('fhirmesh', 'fhirmesh-access-log'),
  });
  const tracing = variantCost(runs, 'tracing', 'fhirmesh');
  rows.push({
    figure: 'with tracing on (vs off)',
    cells: { fhirmesh: tracing === null ? 'n/a (no tracing yet: add --variant tracing=fhirmesh:...)' : costCell(tracing) },
    target: '',
    verdict: 'n/a',
  });

  const header = ['figure', ...COLUMNS.map((column) => HEADINGS[column]), 'target', 'fhirmesh vs target'];
  const lines = [`| ${header.join(' | ')} |`, `| --- | ${COLUMNS.map(() => '---:').join(' | ')} | --- | --- |`];
  for (const row of rows) lines.push(`| ${[row.figure, ...COLUMNS.map((column) => row.cells[column] ?? '–'), row.target, row.verdict].join(' | ')} |`);
  return { markdown: lines.join('\n'), rows };
}

/** What could make a figure wrong, said next to the table rather than buried in the JSON. */
export function warnings(summaries: Readonly<Record<string, ContenderSummary>>, sweep: readonly SweepRun[], streaming: readonly StreamingRun[], runs: readonly ContenderRun[]): string[] {
  const found: string[] = [];
  for (const summary of Object.values(summaries)) {
    for (const failure of summary.conformanceFailures) found.push(`${summary.contender}: ${failure}`);
    if (summary.failures > 0) found.push(`${summary.contender}: ${summary.failures} failed requests (errors, timeouts or non-2xx) under load`);
    // Keep-alive: wrk's 32 connections need at most a few dozen upstream connections.
    if (summary.contender !== 'direct' && summary.maxUpstreamConnectionsOpened > 256) {
      found.push(`${summary.contender}: opened ${summary.maxUpstreamConnectionsOpened} upstream connections in one saturation window: upstream keep-alive is not working`);
    }
  }
  const withLog = summaries['fhirmesh-access-log'];
  if (withLog !== undefined && withLog.accessLogLines === 0) found.push('fhirmesh-access-log wrote no access lines: the access-log row measures nothing');
  const withoutLog = summaries.fhirmesh;
  if (withoutLog !== undefined && (withoutLog.accessLogLines ?? 0) > 0) found.push(`fhirmesh (--no-access-log) wrote ${withoutLog.accessLogLines} access lines`);
  for (const point of sweep) if (point.saturation.failures > 0) found.push(`sweep ${point.mode} ${point.routes} routes: ${point.saturation.failures} failed requests`);
  for (const run of streaming) {
    if (!run.up.complete) found.push(`${run.contender}: the upload arrived incomplete (${run.up.bytes} bytes)`);
    if (!run.down.complete) found.push(`${run.contender}: the download arrived incomplete (${run.down.bytes} bytes)`);
  }
  const other = runs.flatMap((run) => [run.saturation.otherCores, run.rates.uniform.otherCores, run.rates.bursty.otherCores]);
  const repeated = runs.filter((run) => run.discardedAttempts.length > 0).length;
  if (repeated > 0) found.push(`${repeated} contender run(s) were measured again because other load went above --max-other-load`);
  if (other.some((cores) => cores > 0.2)) found.push(`other processes used up to ${fixed(Math.max(...other), 2)} cores during a window (median ${fixed(median(other), 2)}): figures are noisy; compare on a quiet machine`);
  return found;
}

export function otherLoad(runs: readonly ContenderRun[], sweep: readonly SweepRun[]): { readonly median: number; readonly max: number; readonly windows: number } {
  const values = [...runs.flatMap((run) => [run.saturation.otherCores, run.rates.uniform.otherCores, run.rates.bursty.otherCores]), ...sweep.map((point) => point.saturation.otherCores)];
  return { median: median(values), max: values.length === 0 ? NaN : Math.max(...values), windows: values.length };
}
