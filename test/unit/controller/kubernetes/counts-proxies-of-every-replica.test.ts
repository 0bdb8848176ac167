// Pins the cross-replica ACK state: a replica's proxy report round-trips through JSON, the leader
// merges it with its own proxies (each proxy once, local first) and Programmed counts them all.

import { describe, expect, it } from 'vitest';
import { translate } from '../../../../controller/src/compile/index.ts';
import { ProxyRecord } from '../../../../controller/src/discovery/index.ts';
import { buildReport, parseReport, viewsOfReport } from '../../../../controller/src/kubernetes/internal/proxy-reports.ts';
import { reportConfigMapName } from '../../../../controller/src/kubernetes/internal/replica-reports.ts';
import { viewsOfRecords } from '../../../../controller/src/status/index.ts';
import { groupViews, mergeViews } from '../../../../controller/src/status/internal/proxy-groups.ts';
import { computeRouteStatus } from '../../../../controller/src/status/internal/route-status.ts';
import { refsOf, route } from '../../api/route-fixtures.ts';

const acmeV1 = route({ destination: 'acme', exportTo: ['*'] }, { name: 'acme', namespace: 'payers', generation: 1 });
const acmeV2 = route({ destination: 'acme', exportTo: ['*'], backend: { url: 'https://v2.acme.example' } }, { name: 'acme', namespace: 'payers', generation: 2 });
const v1 = translate({ routes: [acmeV1], refs: refsOf() }, 1);
const v2 = translate({ routes: [acmeV2], refs: refsOf() }, 2);

function proxy(nodeId: string, namespace: string): ProxyRecord {
  return new ProxyRecord({ streamId: 1, identity: { nodeId, namespace, labels: {}, proxyVersion: '' }, namespace, connectedAt: new Date(0), disconnect: () => undefined });
}

function programmedOf(groups: ReturnType<typeof groupViews>): [string | undefined, unknown] {
  const result = v2.results[0];
  if (result === undefined) throw new Error('no result');
  const status = computeRouteStatus({ route: acmeV2, result, proxies: groups, previous: undefined, now: new Date('2026-03-01T00:00:00Z') });
  return [status.conditions?.find((c) => c.type === 'Programmed')?.reason, status.proxies];
}

describe('proxy reports', () => {
  it('round-trip through JSON with each table written once, by version', () => {
    const a = proxy('gw-a', 'payers');
    const b = proxy('gw-b', 'payers');
    const c = proxy('gw-c', 'labs');
    a.acknowledged(v2.snapshotFor('payers'));
    b.acknowledged(v2.snapshotFor('payers'));
    const refused = v2.snapshotFor('labs');
    c.acknowledged(v1.snapshotFor('labs'));
    c.refused({ version: refused.version, message: 'x'.repeat(5_000), table: refused, at: new Date(0) });

    const report = buildReport('ctrl-b', 7, [c, b, a]);
    expect(report.proxies.map((p) => [p.namespace, p.nodeId, p.acked === undefined ? '-' : 'acked', p.nack?.message.length])).toEqual([
      ['labs', 'gw-c', 'acked', 1024],
      ['payers', 'gw-a', 'acked', undefined],
      ['payers', 'gw-b', 'acked', undefined],
    ]);
    expect(Object.values(report.tables)).toEqual([{ 'payers/acme': 1 }, { 'payers/acme': 2 }]);
    const parsed = parseReport(JSON.stringify(report));
    expect(parsed).toEqual(report);
    expect(viewsOfReport(parsed).map((view) => [view.nodeId, view.running?.get('payers/acme'), view.nack?.routes.get('payers/acme')])).toEqual([
      ['gw-c', 1, 2],
      ['gw-a', 2, undefined],
      ['gw-b', 2, undefined],
    ]);
  });

  it('refuses a report of another shape whole', () => {
    expect(() => parseReport('{"format":2}')).toThrow('not a format 1 proxy report');
    expect(() => parseReport(JSON.stringify({ format: 1, replica: 'a', heartbeat: 1, tables: { v: { 'a/b': 'one' } }, proxies: [] }))).toThrow('table v must map namespace/name to a generation');
    expect(() => parseReport(JSON.stringify({ format: 1, replica: 'a', heartbeat: 1, tables: {}, proxies: [{ nodeId: 'x' }] }))).toThrow('each proxy needs nodeId and namespace');
  });

  it('makes Programmed count the leader\'s proxies and those of other replicas\' reports', () => {
    const local = proxy('gw-a', 'payers');
    local.acknowledged(v2.snapshotFor('payers'));
    const remoteRunsV2 = proxy('gw-b', 'labs');
    remoteRunsV2.acknowledged(v2.snapshotFor('labs'));
    const remoteRunsV1 = proxy('gw-c', 'payers');
    remoteRunsV1.acknowledged(v1.snapshotFor('payers'));
    const report = parseReport(JSON.stringify(buildReport('ctrl-b', 1, [remoteRunsV2, remoteRunsV1])));

    // Only the leader's own proxy: 1 of 1.
    expect(programmedOf(groupViews(mergeViews([viewsOfRecords([local])])))).toEqual(['Programmed', { total: 1, programmed: 1 }]);
    // With the other replica's: gw-c still runs generation 1.
    expect(programmedOf(groupViews(mergeViews([viewsOfRecords([local]), viewsOfReport(report)])))).toEqual(['Pending', { total: 3, programmed: 2 }]);
  });

  it('counts a proxy once when it shows in two places, preferring the leader\'s live view', () => {
    const moved = proxy('gw-c', 'payers');
    moved.acknowledged(v2.snapshotFor('payers'));
    const stale = proxy('gw-c', 'payers');
    stale.acknowledged(v1.snapshotFor('payers'));
    // gw-c moved to the leader; the dead replica's report, not yet expired, still lists it on v1.
    const deadReplica = parseReport(JSON.stringify(buildReport('ctrl-dead', 9, [stale])));
    const merged = mergeViews([viewsOfRecords([moved]), viewsOfReport(deadReplica)]);
    expect(merged.map((view) => [view.nodeId, view.running?.get('payers/acme')])).toEqual([['gw-c', 2]]);
    expect(programmedOf(groupViews(merged))).toEqual(['Programmed', { total: 1, programmed: 1 }]);
  });

  it('names each replica\'s ConfigMap after it, hashing ids that are not DNS names', () => {
    expect(reportConfigMapName('fhirmesh-controller-7d9f-abcde')).toBe('fhirmesh-proxies-fhirmesh-controller-7d9f-abcde');
    expect(reportConfigMapName('My_Laptop')).toMatch(/^fhirmesh-proxies-my-laptop-[0-9a-f]{10}$/);
    expect(reportConfigMapName('my-laptop')).not.toBe(reportConfigMapName('My_Laptop'));
    expect(reportConfigMapName('x'.repeat(300)).length).toBeLessThanOrEqual(253);
  });
});
