// What each replica tells the leader about the proxies it serves (a "proxy report"), and how the
// leader merges reports with its own proxies into the groups status counts. Pure: no I/O, no clock.

import type { ScopedTable } from '../compile/index.ts';
import type { ProxyRecord } from '../discovery/index.ts';
import type { ProxyGroup } from '../status/index.ts';

export const REPORT_LABEL = 'fhirmesh.io/proxy-report';
export const REPORT_DATA_KEY = 'report.json';
/** A proxy's NACK message is shown in status; longer ones are cut, so one chatty proxy cannot fill the ConfigMap. */
const MAX_NACK_MESSAGE = 1024;

/**
 * One replica's proxies. Tables are content-addressed (their version is a hash that includes every
 * route's generation), so each table a proxy runs or refused is written once, by version.
 */
export interface ProxyReport {
  format: 1;
  replica: string;
  /** Bumped on every write: a heartbeat changes the object, and readers see the writer alive. */
  heartbeat: number;
  /** table version → namespace/name → generation. */
  tables: Record<string, Record<string, number>>;
  proxies: ReportedProxy[];
}

export interface ReportedProxy {
  nodeId: string;
  namespace: string;
  /** Version of the table it ACKed last; absent before its first ACK. */
  acked?: string;
  nack?: { version: string; message: string };
}

/** A proxy as status counts it, whichever replica it is connected to. */
export interface ProxyView {
  nodeId: string;
  namespace: string;
  ackedVersion: string;
  /** namespace/name → generation in the table it runs; undefined before its first ACK. */
  running: ReadonlyMap<string, number> | undefined;
  nack?: { version: string; message: string; routes: ReadonlyMap<string, number> };
}

const generationsOf = new WeakMap<ScopedTable, ReadonlyMap<string, number>>();

/** namespace/name → generation of every route in a table, from the routes' sources (cached per table). */
export function routeGenerations(table: ScopedTable): ReadonlyMap<string, number> {
  let generations = generationsOf.get(table);
  if (generations === undefined) {
    const map = new Map<string, number>();
    for (const { route } of table.entries.values()) map.set(`${route.source.namespace}/${route.source.name}`, route.source.generation);
    generations = map;
    generationsOf.set(table, generations);
  }
  return generations;
}

export function viewsOfRecords(records: readonly ProxyRecord[]): ProxyView[] {
  return records.map((record) => ({
    nodeId: record.identity.nodeId,
    namespace: record.namespace,
    ackedVersion: record.ackedVersion,
    running: record.acked === undefined ? undefined : routeGenerations(record.acked),
    ...(record.nack === undefined ? {} : { nack: { version: record.nack.version, message: record.nack.message, routes: routeGenerations(record.nack.table) } }),
  }));
}

export function buildReport(replica: string, heartbeat: number, records: readonly ProxyRecord[]): ProxyReport {
  const tables: Record<string, Record<string, number>> = {};
  const remember = (table: ScopedTable): void => {
    tables[table.version] ??= Object.fromEntries([...routeGenerations(table)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  };
  const proxies = records
    .map((record): ReportedProxy => {
      if (record.acked !== undefined) remember(record.acked);
      if (record.nack !== undefined) remember(record.nack.table);
      return {
        nodeId: record.identity.nodeId,
        namespace: record.namespace,
        ...(record.acked === undefined ? {} : { acked: record.acked.version }),
        ...(record.nack === undefined ? {} : { nack: { version: record.nack.version, message: record.nack.message.slice(0, MAX_NACK_MESSAGE) } }),
      };
    })
    .sort((a, b) => (a.namespace + '/' + a.nodeId < b.namespace + '/' + b.nodeId ? -1 : 1));
  return { format: 1, replica, heartbeat, tables, proxies };
}

/** A report read back, checked for shape: a malformed one (another version, a hand edit) is refused whole. */
export function parseReport(text: string): ProxyReport {
  const value: unknown = JSON.parse(text);
  const report = value as Partial<ProxyReport> | null;
  if (typeof report !== 'object' || report === null || report.format !== 1) throw new Error('not a format 1 proxy report');
  if (typeof report.replica !== 'string' || typeof report.heartbeat !== 'number') throw new Error('replica and heartbeat are required');
  if (typeof report.tables !== 'object' || report.tables === null || !Array.isArray(report.proxies)) throw new Error('tables and proxies are required');
  for (const [version, routes] of Object.entries(report.tables)) {
    if (typeof routes !== 'object' || routes === null || Object.values(routes).some((g) => typeof g !== 'number')) {
      throw new Error(`table ${version} must map namespace/name to a generation`);
    }
  }
  for (const proxy of report.proxies as unknown[]) {
    const p = proxy as Partial<ReportedProxy> | null;
    if (typeof p?.nodeId !== 'string' || typeof p.namespace !== 'string') throw new Error('each proxy needs nodeId and namespace');
    if (p.acked !== undefined && typeof p.acked !== 'string') throw new Error('proxy acked must be a table version');
    if (p.nack !== undefined && (typeof p.nack?.version !== 'string' || typeof p.nack.message !== 'string')) throw new Error('proxy nack needs version and message');
  }
  return report as ProxyReport;
}

export function viewsOfReport(report: ProxyReport): ProxyView[] {
  const table = (version: string): ReadonlyMap<string, number> => new Map(Object.entries(report.tables[version] ?? {}));
  return report.proxies.map((proxy) => ({
    nodeId: proxy.nodeId,
    namespace: proxy.namespace,
    ackedVersion: proxy.acked ?? '',
    running: proxy.acked === undefined ? undefined : table(proxy.acked),
    ...(proxy.nack === undefined ? {} : { nack: { version: proxy.nack.version, message: proxy.nack.message, routes: table(proxy.nack.version) } }),
  }));
}

/**
 * Every proxy once: a proxy that moved from a replica that died to another one shows in both until
 * the dead replica's report expires. The first source listed wins (the caller lists its own live
 * proxies first, then reports freshest first).
 */
export function mergeViews(sources: readonly (readonly ProxyView[])[]): ProxyView[] {
  const seen = new Set<string>();
  const merged: ProxyView[] = [];
  for (const views of sources) {
    for (const view of views) {
      const id = `${view.namespace}/${view.nodeId}`;
      if (seen.has(id)) continue;
      seen.add(id);
      merged.push(view);
    }
  }
  return merged;
}

/** Proxies with the same namespace, table and NACK affect every route alike: one group each. */
export function groupViews(views: readonly ProxyView[]): ProxyGroup[] {
  const groups = new Map<string, { group: ProxyGroup; nodeIds: string[] }>();
  for (const view of views) {
    const id = [view.namespace, view.ackedVersion, view.nack?.version ?? '', view.nack?.message ?? ''].join('\0');
    let entry = groups.get(id);
    if (entry === undefined) {
      const nodeIds: string[] = [];
      entry = {
        nodeIds,
        group: { namespace: view.namespace, nodeIds, running: view.running, ...(view.nack === undefined ? {} : { nack: view.nack }) },
      };
      groups.set(id, entry);
    }
    entry.nodeIds.push(view.nodeId);
  }
  for (const { nodeIds } of groups.values()) nodeIds.sort();
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry.group);
}
