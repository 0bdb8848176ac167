// The issue's table: each figure beside its target, per source, with met / not met and by how much.
import type { BenchOptions } from './options.ts';
import type { SourceRun } from './measure.ts';

export interface Row {
  readonly figure: string;
  readonly target: string;
  /** Per source: the figure as printed, and whether it meets the target (null: not measured). */
  readonly values: Readonly<Record<string, { readonly text: string; readonly met: boolean | null; readonly by: string }>>;
}

/** Nearest-rank percentile of the values (null when there are none). */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

const seconds = (ms: number | null, digits = 2): string => (ms === null ? 'never' : `${(ms / 1000).toFixed(digits)} s`);
const times = (value: number, limit: number): string => (value <= limit ? '' : `${(value / limit).toFixed(value / limit < 10 ? 2 : 1)}× the target`);
const MiB = 1048576;

/** ", 537 streams dropped (RESOURCE_EXHAUSTED 537) and reconnected", or nothing. */
function dropsText(ends: Readonly<Record<string, number>>): string {
  const total = Object.values(ends).reduce((sum, count) => sum + count, 0);
  if (total === 0) return '';
  return `, ${total} streams dropped (${Object.entries(ends).map(([code, count]) => `${count} ${code}`).join(', ')}) and reconnected`;
}

interface Judged {
  readonly text: string;
  readonly met: boolean | null;
  readonly by: string;
}

function changeRow(run: SourceRun): Judged {
  const acks = run.changes.map((change) => change.lastAckMs);
  const missed = acks.filter((ack) => ack === null).length;
  const values = acks.filter((ack): ack is number => ack !== null);
  const p50 = percentile(values, 50);
  const p99 = percentile(values, 99);
  if (p50 === null || p99 === null) return { text: 'never', met: false, by: 'no change reached every proxy' };
  const met = missed === 0 && p50 <= 250 && p99 <= 1_000;
  const by = [p50 > 250 ? `p50 ${times(p50, 250)}` : '', p99 > 1_000 ? `p99 ${times(p99, 1_000)}` : '', missed > 0 ? `${missed} never converged` : ''].filter((part) => part !== '').join(', ');
  return { text: `${seconds(p50, 3)} / ${seconds(p99, 3)}`, met, by };
}

function realProxyRow(run: SourceRun): Judged {
  const served = run.changes.map((change) => change.realProxyMs);
  const values = served.filter((ms): ms is number => ms !== null);
  const p50 = percentile(values, 50);
  const p99 = percentile(values, 99);
  if (p50 === null || p99 === null) return { text: 'never', met: false, by: 'the real proxy never served a change' };
  const missed = served.length - values.length;
  return { text: `${seconds(p50, 3)} (p99 ${seconds(p99, 3)})`, met: missed === 0 && p99 <= 1_000, by: [times(p99, 1_000) === '' ? '' : `p99 ${times(p99, 1_000)}`, missed > 0 ? `${missed} never served` : ''].filter((part) => part !== '').join(', ') };
}

function convergenceRow(run: SourceRun): Judged {
  const metric = run.changes.map((change) => change.convergenceMetricMs).filter((ms): ms is number => ms !== null);
  const waited = run.changes.map((change) => change.lastAckMs).filter((ms): ms is number => ms !== null);
  const metricP50 = percentile(metric, 50);
  const waitedP50 = percentile(waited, 50);
  if (metricP50 === null || waitedP50 === null) return { text: `metric: ${metric.length} of ${run.changes.length} changes observed`, met: false, by: 'the metric did not move per change' };
  // "The same figure": within a fifth of what the proxies waited, or 50 ms, whichever is larger.
  const gap = Math.abs(metricP50 - waitedP50);
  const met = gap <= Math.max(50, waitedP50 * 0.2) && metric.length === run.changes.length;
  return { text: `${seconds(metricP50, 3)} vs ${seconds(waitedP50, 3)} (p50)`, met, by: met ? '' : `metric ${metricP50 < waitedP50 ? 'hides' : 'adds'} ${seconds(gap, 3)}` };
}

function waveRow(run: SourceRun): Judged {
  if (run.wave === null) return { text: 'not run', met: null, by: '' };
  const dropped = Object.values(run.wave.ends).reduce((total, count) => total + count, 0);
  const codes = Object.entries(run.wave.ends).map(([code, count]) => `${count} ${code}`).join(', ');
  const text = `${run.wave.done} of ${run.wave.proxies} served${run.wave.ms === null ? ' (timed out)' : ` in ${seconds(run.wave.ms)}`}, ${dropped} dropped${dropped > 0 ? ` (${codes})` : ''}, controller peak ${(run.wave.controllerPeakRssBytes / MiB).toFixed(0)} MiB`;
  const killed = run.wave.controllerKilledAtRssBytes;
  if (killed !== null) return { text: `${text}; controller killed at ${(killed / MiB).toFixed(0)} MiB RSS (--max-controller-rss)`, met: false, by: 'the controller ran out of memory' };
  const complete = dropped === 0 && run.wave.done === run.wave.proxies;
  // Past the controller's default 15 s ACK deadline a stalled worker alone can make it close streams.
  const stalled = run.wave.workerLoopDelayMaxMs > 15_000 ? `; the simulated proxies' own loop stalled ${seconds(run.wave.workerLoopDelayMaxMs, 1)}, so part of the drops is the harness` : '';
  if (!complete && stalled !== '') return { text: `${text}${stalled}`, met: false, by: `${dropped} dropped` };
  if (run.wave.proxies < 5_000) return { text, met: null, by: complete ? `a wave of ${run.wave.proxies} (the target is 5,000: --wave-proxies 5000)` : `${dropped} dropped in a wave of only ${run.wave.proxies}` };
  return { text, met: complete, by: complete ? '' : `${dropped} dropped, ${run.wave.proxies - run.wave.done} not served` };
}

export function buildRows(runs: readonly SourceRun[], options: BenchOptions): Row[] {
  const per = (judge: (run: SourceRun) => Judged): Row['values'] => Object.fromEntries(runs.map((run) => [run.source, judge(run)]));
  return [
    { figure: `one-route change → last ACK in scope, p50 / p99 (${options.changes} changes)`, target: '≤ 0.25 s / ≤ 1 s', values: per(changeRow) },
    { figure: 'a real proxy serves the changed route after the edit, p50 (p99)', target: '≤ 1 s (p99)', values: per(realProxyRow) },
    {
      figure: 'controller CPU while nothing changes',
      target: '≤ 2 % of a core',
      values: per((run) => ({ text: `${run.idle.cpuPercent.toFixed(1)} %`, met: run.idle.cpuPercent <= 2, by: times(run.idle.cpuPercent, 2) })),
    },
    {
      figure: `controller peak RSS (VmHWM, ${options.proxies} proxies)`,
      target: '≤ 256 MiB',
      values: per((run) => ({ text: `${(run.controllerPeakRssBytes / MiB).toFixed(0)} MiB`, met: run.controllerPeakRssBytes <= 256 * MiB, by: times(run.controllerPeakRssBytes / MiB, 256) })),
    },
    {
      figure: `all ${options.proxies} proxies have their first table`,
      target: '≤ 3 s',
      values: per((run) => ({ text: `${run.firstTables.ms === null ? `never (${run.firstTables.done} of ${run.firstTables.proxies})` : seconds(run.firstTables.ms)}${dropsText(run.firstTables.ends)}`, met: run.firstTables.ms !== null && run.firstTables.ms <= 3_000, by: run.firstTables.ms === null ? 'timed out' : times(run.firstTables.ms, 3_000) })),
    },
    {
      figure: `burst of ${options.burst} changes → last ACK`,
      target: '≤ 2 s',
      values: per((run) =>
        run.burst === null
          ? { text: 'not run', met: null, by: '' }
          : { text: `${seconds(run.burst.lastAckMs)} (writes took ${seconds(run.burst.writeMs)})`, met: run.burst.lastAckMs !== null && run.burst.lastAckMs <= 2_000, by: run.burst.lastAckMs === null ? 'timed out' : times(run.burst.lastAckMs, 2_000) },
      ),
    },
    { figure: `reconnect wave without a drop (${options.waveProxies} streams at once)`, target: '≥ 5,000', values: per(waveRow) },
    { figure: '`convergence_seconds` vs what proxies waited', target: 'the same figure', values: per(convergenceRow) },
  ];
}

/** One line per source: how busy the rest of the machine was while each phase ran. */
export function loadLines(runs: readonly SourceRun[]): string[] {
  return runs.map((run) => {
    const phases: [string, { otherCores: number; workerSeconds: number; wallSeconds: number } | undefined][] = [
      ['first tables', run.firstTables.cpu],
      ['changes', run.changesCpu],
      ['burst', run.burst?.cpu],
      ['wave', run.wave?.cpu],
    ];
    const parts = phases.filter((phase): phase is [string, NonNullable<(typeof phase)[1]>] => phase[1] !== undefined).map(([name, cpu]) => `${name} ${cpu.otherCores.toFixed(2)} (workers ${(cpu.workerSeconds / cpu.wallSeconds).toFixed(2)})`);
    return `${run.source}: cores busy with other work per phase: ${parts.join(', ')}`;
  });
}

export function markdownTable(rows: readonly Row[], sources: readonly string[]): string {
  const verdict = (value: Judged | undefined): string => (value === undefined || value.met === null ? (value?.by ?? '') : value.met ? 'met' : `NOT MET${value.by === '' ? '' : ` (${value.by})`}`);
  const header = `| figure | target | ${sources.map((source) => `${source} | met?`).join(' | ')} |`;
  const rule = `| --- | ---: | ${sources.map(() => '---: | ---').join(' | ')} |`;
  const lines = rows.map((row) => `| ${row.figure} | ${row.target} | ${sources.map((source) => `${row.values[source]?.text ?? ''} | ${verdict(row.values[source])}`).join(' | ')} |`);
  return [header, rule, ...lines].join('\n');
}
