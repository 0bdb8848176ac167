// What each replica tells the others about the proxies it serves (a "proxy report"): built from its
// registry, checked when read back, and turned into the proxy views status counts. Pure: no I/O, no clock.

import type { ScopedTable } from '../../compile/index.ts';
import type { ProxyRecord } from '../../discovery/index.ts';
import { routeGenerations, type ProxyView } from '../../status/index.ts';

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
