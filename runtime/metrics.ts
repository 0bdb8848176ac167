// Prometheus metrics for both processes: counters, gauges and histograms with labels, a registry
// that renders the text exposition format, and the standard process_* / nodejs_* metrics. The
// surface is the subset of prom-client fhirmesh uses; loading prom-client costs a sidecar about
// 20 MiB of RSS (it pulls in its push gateway, cluster support and every default collector), this
// costs well under one, and a labelled increment is one Map lookup on a joined key.

import type * as PerfHooks from 'node:perf_hooks';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = Partial<Record<L, string | number>>;

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers?: Registry[];
}

/** One series as prom-client's `get()` reports it. */
export interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
}

interface Collectable {
  readonly name: string;
  render(): Promise<string> | string;
  /** The series after collection, as prom-client's `get()` gives them (counters and gauges). */
  get(): Promise<{ name: string; values: MetricValue[] }>;
}

export class Registry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  readonly #metrics = new Map<string, Collectable>();

  registerMetric(metric: Collectable): void {
    if (this.#metrics.has(metric.name)) throw new Error(`a metric named ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
  }

  getSingleMetric(name: string): Collectable | undefined {
    return this.#metrics.get(name);
  }

  async metrics(): Promise<string> {
    const parts: string[] = [];
    for (const metric of this.#metrics.values()) parts.push(await metric.render());
    return parts.filter((part) => part !== '').join('\n') + '\n';
  }
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '"': '\\"' };

function escapeLabel(value: string): string {
  return value.replace(/[\\\n"]/g, (c) => ESCAPES[c] ?? c);
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => ESCAPES[c] ?? c);
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Shared by the three kinds: label handling, series by joined label values, rendering. */
abstract class Metric<L extends string, S> implements Collectable {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: string; labelValues: Record<string, string | number>; state: S }>();
  readonly #collect: (() => void | Promise<void>) | undefined;
  readonly #type: string;

  constructor(options: MetricOptions<L> & { collect?: (this: never) => void | Promise<void> }, type: string) {
    this.#type = type;
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.#collect = options.collect?.bind(this as never);
    for (const registry of options.registers ?? []) registry.registerMetric(this);
  }

  /** A metric without labels reads 0 before anything happens (as prom-client renders it), not nothing. */
  protected withZeroSeries(): void {
    if (this.labelNames.length === 0) this.state(undefined);
  }

  protected abstract initial(): S;

  /** The series for these label values, created on first use; unknown label names are refused. */
  protected state(labels: Labels<L> | undefined): S {
    const names = this.labelNames;
    let key = '';
    if (labels !== undefined) {
      for (let i = 0; i < names.length; i++) key += (i === 0 ? '' : '\u0000') + String(labels[names[i] as L] ?? '');
    }
    let entry = this.series.get(key);
    if (entry === undefined) {
      let rendered = '';
      if (labels !== undefined) {
        // Checked once per new series, not on every increment.
        for (const name of Object.keys(labels)) {
          if (!(names as readonly string[]).includes(name)) throw new Error(`${this.name} has no label ${name}`);
        }
        const pairs: string[] = [];
        for (const name of names) {
          const value = labels[name];
          if (value !== undefined) pairs.push(`${name}="${escapeLabel(String(value))}"`);
        }
        rendered = pairs.join(',');
      }
      entry = { labels: rendered, labelValues: { ...labels }, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  reset(): void {
    this.series.clear();
  }

  async get(): Promise<{ name: string; values: MetricValue[] }> {
    if (this.#collect !== undefined) await this.#collect();
    const values: MetricValue[] = [];
    for (const { labelValues, state } of this.series.values()) values.push({ labels: labelValues, value: this.valueOf(state) });
    return { name: this.name, values };
  }

  /** The one number a series reports in `get()` (a histogram's count). */
  protected abstract valueOf(state: S): number;

  async render(): Promise<string> {
    if (this.#collect !== undefined) await this.#collect();
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.#type}`];
    this.renderSeries(lines);
    return lines.join('\n');
  }

  protected abstract renderSeries(lines: string[]): void;
}

function labelled(name: string, labels: string, extra = ''): string {
  const all = labels === '' ? extra : extra === '' ? labels : `${labels},${extra}`;
  return all === '' ? name : `${name}{${all}}`;
}

export class Counter<L extends string = string> extends Metric<L, { value: number }> {
  constructor(options: MetricOptions<L> & { collect?: (this: Counter<L>) => void | Promise<void> }) {
    super(options, 'counter');
    this.withZeroSeries();
  }

  protected initial(): { value: number } {
    return { value: 0 };
  }

  protected valueOf(state: { value: number }): number {
    return state.value;
  }

  inc(labels?: Labels<L> | number, value = 1): void {
    if (typeof labels === 'number') this.state(undefined).value += labels;
    else this.state(labels).value += value;
  }

  protected renderSeries(lines: string[]): void {
    for (const { labels, state } of this.series.values()) lines.push(`${labelled(this.name, labels)} ${formatValue(state.value)}`);
  }
}

export class Gauge<L extends string = string> extends Metric<L, { value: number }> {
  constructor(options: MetricOptions<L> & { collect?: (this: Gauge<L>) => void | Promise<void> }) {
    super(options, 'gauge');
    this.withZeroSeries();
  }

  protected initial(): { value: number } {
    return { value: 0 };
  }

  protected valueOf(state: { value: number }): number {
    return state.value;
  }

  set(labels: Labels<L> | number, value?: number): void {
    if (typeof labels === 'number') this.state(undefined).value = labels;
    else this.state(labels).value = value ?? 0;
  }

  inc(labels?: Labels<L> | number, value = 1): void {
    if (typeof labels === 'number') this.state(undefined).value += labels;
    else this.state(labels).value += value;
  }

  dec(labels?: Labels<L> | number, value = 1): void {
    if (typeof labels === 'number') this.state(undefined).value -= labels;
    else this.state(labels).value -= value;
  }

  protected renderSeries(lines: string[]): void {
    for (const { labels, state } of this.series.values()) lines.push(`${labelled(this.name, labels)} ${formatValue(state.value)}`);
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = string> extends Metric<L, HistogramState> {
  readonly #buckets: readonly number[];

  constructor(options: MetricOptions<L> & { buckets?: readonly number[]; collect?: (this: Histogram<L>) => void | Promise<void> }) {
    super(options, 'histogram');
    this.#buckets = [...(options.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])].sort((a, b) => a - b);
    this.withZeroSeries();
  }

  protected initial(): HistogramState {
    return { counts: new Array<number>(this.#buckets.length).fill(0), sum: 0, count: 0 };
  }

  protected valueOf(state: HistogramState): number {
    return state.count;
  }

  observe(labels: Labels<L> | number, value?: number): void {
    const state = typeof labels === 'number' ? this.state(undefined) : this.state(labels);
    const observed = typeof labels === 'number' ? labels : (value ?? 0);
    const buckets = this.#buckets;
    // Counted in the first bucket it fits; cumulated when rendered.
    for (let i = 0; i < buckets.length; i++) {
      if (observed <= (buckets[i] as number)) {
        (state.counts[i] as number)++;
        break;
      }
    }
    state.sum += observed;
    state.count++;
  }

  protected renderSeries(lines: string[]): void {
    for (const { labels, state } of this.series.values()) {
      let cumulative = 0;
      this.#buckets.forEach((bound, i) => {
        cumulative += state.counts[i] as number;
        lines.push(`${labelled(`${this.name}_bucket`, labels, `le="${formatValue(bound)}"`)} ${cumulative}`);
      });
      lines.push(`${labelled(`${this.name}_bucket`, labels, 'le="+Inf"')} ${state.count}`);
      lines.push(`${labelled(`${this.name}_sum`, labels)} ${formatValue(state.sum)}`);
      lines.push(`${labelled(`${this.name}_count`, labels)} ${state.count}`);
    }
  }
}

/**
 * The standard process_* and nodejs_* metrics under the names prom-client (and so every stock
 * Node.js dashboard) uses, read at scrape time; the event-loop delay from perf_hooks' sampler.
 */
export function collectDefaultMetrics(options: { register: Registry; prefix?: string }): void {
  const { register } = options;
  const prefix = options.prefix ?? '';
  const registers = [register];
  const perf: typeof PerfHooks = process.getBuiltinModule('node:perf_hooks');
  const loopDelay = perf.monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      this.reset();
      this.inc(process.cpuUsage().user / 1e6);
    },
  });
  new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: 'Total system CPU time spent in seconds.',
    registers,
    collect() {
      this.reset();
      this.inc(process.cpuUsage().system / 1e6);
    },
  });
  new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect() {
      const usage = process.cpuUsage();
      this.reset();
      this.inc((usage.user + usage.system) / 1e6);
    },
  });
  new Gauge({ name: `${prefix}process_start_time_seconds`, help: 'Start time of the process since unix epoch in seconds.', registers, collect() {
    this.set(startSeconds);
  } });
  new Gauge({ name: `${prefix}process_resident_memory_bytes`, help: 'Resident memory size in bytes.', registers, collect() {
    this.set(process.memoryUsage.rss());
  } });
  new Gauge({ name: `${prefix}process_open_fds`, help: 'Number of open file descriptors.', registers, collect() {
    const fs = process.getBuiltinModule('node:fs');
    try {
      this.set(fs.readdirSync('/proc/self/fd').length - 1);
    } catch {
      this.reset();
    }
  } });
  new Gauge({ name: `${prefix}nodejs_eventloop_lag_seconds`, help: 'Lag of event loop in seconds (mean since the last scrape).', registers, collect() {
    this.set(Number.isFinite(loopDelay.mean) ? loopDelay.mean / 1e9 : 0);
  } });
  for (const [suffix, percentile] of [['p50', 50], ['p90', 90], ['p99', 99]] as const) {
    new Gauge({ name: `${prefix}nodejs_eventloop_lag_${suffix}_seconds`, help: `The ${percentile}th percentile of the recorded event loop delays.`, registers, collect() {
      this.set(loopDelay.percentile(percentile) / 1e9);
      if (suffix === 'p99') loopDelay.reset();
    } });
  }
  new Gauge({ name: `${prefix}nodejs_eventloop_lag_max_seconds`, help: 'The maximum recorded event loop delay.', registers, collect() {
    this.set(loopDelay.max / 1e9);
  } });
  new Gauge({ name: `${prefix}nodejs_heap_size_total_bytes`, help: 'Process heap size from Node.js in bytes.', registers, collect() {
    this.set(process.memoryUsage().heapTotal);
  } });
  new Gauge({ name: `${prefix}nodejs_heap_size_used_bytes`, help: 'Process heap size used from Node.js in bytes.', registers, collect() {
    this.set(process.memoryUsage().heapUsed);
  } });
  new Gauge({ name: `${prefix}nodejs_external_memory_bytes`, help: 'Node.js external memory size in bytes.', registers, collect() {
    this.set(process.memoryUsage().external);
  } });
  new Gauge({ name: `${prefix}nodejs_active_handles_total`, help: 'Number of active libuv handles grouped by handle type.', registers, collect() {
    this.set(process.getActiveResourcesInfo().filter((kind) => kind !== 'Timeout' && kind !== 'Immediate').length);
  } });
  const [major = 0, minor = 0, patch = 0] = process.versions.node.split('.').map(Number);
  new Gauge({ name: `${prefix}nodejs_version_info`, help: 'Node.js version info.', labelNames: ['version', 'major', 'minor', 'patch'], registers, collect() {
    this.set({ version: process.version, major, minor, patch }, 1);
  } });
}
