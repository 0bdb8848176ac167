// Sharing ACK state between replicas: each writes its proxy report into a ConfigMap of its own
// (debounced, with a heartbeat); the leader reads all of them and forgets those that stop changing.

import { createHash } from 'node:crypto';
import { canonicalJson, type Logger } from '../../../../runtime/index.ts';
import type { ProxyRecord } from '../../discovery/index.ts';
import type { ProxyView } from '../../status/index.ts';
import type { KubeObject } from './objects.ts';
import { errorOf, type KubeClient } from './kube-client.ts';
import { buildReport, parseReport, REPORT_DATA_KEY, REPORT_LABEL, viewsOfReport, type ProxyReport } from './proxy-reports.ts';
import type { ResilientInformer } from './resilient-informer.ts';

export interface ReportTiming {
  /** Changes this close together are written once. */
  debounceMs: number;
  /** Written at least this often, changed or not: the proof of life. */
  heartbeatMs: number;
  /** A report not seen to change for this long belongs to a dead replica and is no longer counted. */
  ttlMs: number;
}

/** Derived from the lease duration, so one knob (--leader-elect-lease-duration) scales both for tests. */
export function reportTimingFor(leaseDurationMs: number): ReportTiming {
  const heartbeatMs = Math.max(500, Math.round(leaseDurationMs / 3));
  return { debounceMs: Math.min(500, heartbeatMs / 2), heartbeatMs, ttlMs: Math.max(3 * heartbeatMs, leaseDurationMs * 2) };
}

/** A DNS-1123 subdomain per replica; a replica id that needed changing gets a hash so two ids cannot collide. */
export function reportConfigMapName(replica: string): string {
  const cleaned = replica.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const base = `fhirmesh-proxies-${cleaned}`;
  if (cleaned === replica && base.length <= 253) return base;
  const hash = createHash('sha256').update(replica).digest('hex').slice(0, 10);
  return `${base.slice(0, 253 - 11).replace(/[^a-z0-9]+$/, '')}-${hash}`;
}

/** A report ConfigMap as the informer keeps it: parsed once, when it changes. */
export interface ReportEntry {
  report?: ProxyReport;
  /** Why it could not be read, if it could not. */
  problem?: string;
}

export function projectReport(object: KubeObject): ReportEntry {
  const text = (object.data as Record<string, unknown> | undefined)?.[REPORT_DATA_KEY];
  if (typeof text !== 'string') return { problem: `no ${REPORT_DATA_KEY}` };
  try {
    return { report: parseReport(text) };
  } catch (err) {
    return { problem: err instanceof Error ? err.message : String(err) };
  }
}

export interface ProxyReportPublisherOptions {
  client: KubeClient;
  namespace: string;
  replica: string;
  /**
   * The replica's pod, as the report's owner: the garbage collector deletes the report with the pod,
   * also when the replica cannot (killed, or its RBAC already gone during helm uninstall).
   */
  ownerPod?: { name: string; uid: string };
  proxies: () => readonly ProxyRecord[];
  timing: ReportTiming;
  logger: Logger;
}

/** Writes this replica's report: after changes (debounced) and on every heartbeat. Writes never overlap. */
export class ProxyReportPublisher {
  readonly configMapName: string;
  readonly #options: ProxyReportPublisherOptions;
  #heartbeat = 0;
  #debounce: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  #failing = false;
  #running = false;

  constructor(options: ProxyReportPublisherOptions) {
    this.#options = options;
    this.configMapName = reportConfigMapName(options.replica);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#ticker = setInterval(() => this.#write(), this.#options.timing.heartbeatMs);
    this.#write();
  }

  /** A proxy connected, ACKed, NACKed or left: write soon. */
  changed(): void {
    if (!this.#running || this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#write();
    }, this.#options.timing.debounceMs);
  }

  /** Stops writing and deletes the report, so the leader stops counting these proxies at once. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#ticker);
    clearTimeout(this.#debounce);
    await this.#writing;
    const path = `/api/v1/namespaces/${this.#options.namespace}/configmaps/${this.configMapName}`;
    const response = await this.#options.client.request({ method: 'DELETE', path, timeoutMs: 3_000 }).catch(() => undefined);
    if (response !== undefined && response.status >= 300 && response.status !== 404) {
      this.#options.logger.log('warn', 'could not delete this replica proxy report; the leader drops it when it expires', { configMap: this.configMapName, status: response.status });
    }
  }

  #write(): void {
    if (!this.#running) return;
    if (this.#writing !== undefined) {
      this.#again = true;
      return;
    }
    this.#writing = this.#writeOnce()
      .catch((err: unknown) => {
        if (!this.#failing) this.#options.logger.log('warn', 'cannot write this replica proxy report; retrying at the next heartbeat', { configMap: this.configMapName, error: String(err) });
        this.#failing = true;
      })
      .finally(() => {
        this.#writing = undefined;
        if (this.#again) {
          this.#again = false;
          this.#write();
        }
      });
  }

  async #writeOnce(): Promise<void> {
    const { client, namespace, replica } = this.#options;
    const report = buildReport(replica, ++this.#heartbeat, this.#options.proxies());
    const owner = this.#options.ownerPod;
    const metadata = {
      name: this.configMapName,
      namespace,
      labels: { [REPORT_LABEL]: 'true', 'app.kubernetes.io/name': 'fhirmesh', 'app.kubernetes.io/component': 'controller' },
      ...(owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: owner.name, uid: owner.uid }] }),
    };
    const data = { [REPORT_DATA_KEY]: JSON.stringify(report) };
    const path = `/api/v1/namespaces/${namespace}/configmaps/${this.configMapName}`;
    let response = await client.request({ method: 'PATCH', path, body: { metadata, data }, contentType: 'application/merge-patch+json', timeoutMs: 5_000 });
    if (response.status === 404) {
      const collection = `/api/v1/namespaces/${namespace}/configmaps`;
      response = await client.request({ method: 'POST', path: collection, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata, data }, timeoutMs: 5_000 });
    }
    if (response.status < 200 || response.status > 299) throw errorOf({ method: 'PATCH', path }, response);
    if (this.#failing) this.#options.logger.log('info', 'proxy report written again', { configMap: this.configMapName });
    this.#failing = false;
  }
}

export interface ProxyReportAggregatorOptions {
  reports: ResilientInformer<ReportEntry>;
  /** This replica: its own report is skipped (its live proxies are counted directly). */
  replica: string;
  ttlMs: number;
  logger: Logger;
  /** Reports changed, appeared, or expired. */
  onChange: () => void;
  /** Reports just expired (the leader deletes them). */
  onExpired?: (keys: string[]) => void;
  monotonicMs?: () => number;
}

/** The leader's view of the other replicas' reports, judged alive by when it last saw each one change. */
export class ProxyReportAggregator {
  readonly #options: ProxyReportAggregatorOptions;
  /** ConfigMap key → when this replica last saw it change (its own clock: immune to skew). */
  readonly #seenAt = new Map<string, number>();
  #live = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ProxyReportAggregatorOptions) {
    this.#options = options;
    options.reports.onChange((key, previous, current) => {
      if (current === undefined) this.#seenAt.delete(key);
      else {
        this.#seenAt.set(key, this.#now());
        if (current.problem !== undefined) options.logger.log('warn', 'proxy report unreadable; ignored', { configMap: key, problem: current.problem });
      }
      // A heartbeat proves life but changes no count: only other changes are worth a recount.
      this.#refresh(proxiesOf(previous) !== proxiesOf(current));
    });
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#refresh(), Math.max(100, Math.round(this.#options.ttlMs / 4)));
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Proxies of live reports of other replicas, one list per report, freshest report first. */
  remoteViews(): ProxyView[][] {
    return [...this.#live]
      .map((key) => ({ key, seenAt: this.#seenAt.get(key) ?? 0, report: this.#options.reports.get(key)?.report }))
      .filter((entry) => entry.report !== undefined && entry.report.replica !== this.#options.replica)
      .sort((a, b) => b.seenAt - a.seenAt)
      .map((entry) => viewsOfReport(entry.report as ProxyReport));
  }

  get liveCount(): number {
    return [...this.#live].filter((key) => this.#options.reports.get(key)?.report?.replica !== this.#options.replica).length;
  }

  #refresh(contentChanged = false): void {
    const now = this.#now();
    const live = new Set([...this.#seenAt].filter(([, seenAt]) => now - seenAt < this.#options.ttlMs).map(([key]) => key));
    const changed = live.size !== this.#live.size || [...live].some((key) => !this.#live.has(key));
    const expiredNow = [...this.#live].filter((key) => !live.has(key));
    this.#live = live;
    for (const key of expiredNow) this.#options.logger.log('info', 'proxy report expired: its replica stopped renewing it; its proxies no longer count', { configMap: key });
    if (expiredNow.length > 0) this.#options.onExpired?.(expiredNow);
    if (changed || contentChanged) this.#options.onChange();
  }

  #now(): number {
    return (this.#options.monotonicMs ?? (() => performance.now()))();
  }
}

/** A report without its heartbeat, comparable as text. */
function proxiesOf(entry: ReportEntry | undefined): string {
  if (entry?.report === undefined) return canonicalJson({ problem: entry?.problem ?? null });
  const { heartbeat: _heartbeat, ...rest } = entry.report;
  return canonicalJson(rest);
}
