// Calls the status reconciler directly over DesiredStatuses and pins the exact keys it hands the sink
// and the statuses they have: every route at first, then only routes whose status changed (a proxy
// ACK, a NACK, a deleted route), nothing when run twice; transition times survive leader changes.

import { describe, expect, it } from 'vitest';
import type { FhirRoute, FhirRouteStatus } from '../../../api/index.ts';
import { translate, type Translation } from '../../../controller/src/compile/index.ts';
import { ProxyRecord } from '../../../controller/src/discovery/index.ts';
import { DesiredStatuses, StatusReconciler, viewsOfRecords, type ProxyView, type StatusSink } from '../../../controller/src/status/index.ts';
import { silentLogger } from '../../../runtime/index.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const acme = route({ destination: 'acme' }, { name: 'acme', namespace: 'payers', generation: 1 });
const labs = route({ destination: 'labs', exportTo: ['*'] }, { name: 'labs', namespace: 'labs', generation: 2 });

/** A sink that records what it was told; a real one would read desiredStatus(key) and write it. */
class RecordingSink implements StatusSink {
  readonly keys: string[] = [];
  enqueue(key: string): void {
    this.keys.push(key);
  }
}

interface World {
  translation: Translation;
  proxies: ProxyRecord[];
  /** Proxies other replicas report. */
  remote: ProxyView[][];
  /** What is stored, e.g. the FhirRoute's status as the informer has it. */
  stored: Map<string, FhirRouteStatus>;
  now: Date;
  sink: RecordingSink;
  statuses: DesiredStatuses;
  reconciler: StatusReconciler;
  /** Reconciles and returns the keys the sink was handed, with each one's Programmed reason and counts. */
  reconcile(): unknown[];
}

/** A reconciler reading state the test changes between reconciles. */
function world(routes: FhirRoute[]): World {
  const sink = new RecordingSink();
  const state = {
    translation: translate({ routes, refs: refsOf() }, 1),
    proxies: [] as ProxyRecord[],
    remote: [] as ProxyView[][],
    stored: new Map<string, FhirRouteStatus>(),
    now: new Date('2026-03-01T00:00:00Z'),
  };
  const statuses = new DesiredStatuses({
    translation: () => state.translation,
    proxyViews: () => [viewsOfRecords(state.proxies), ...state.remote],
    stored: (key) => state.stored.get(key),
    now: () => state.now,
  });
  const reconciler = new StatusReconciler({ statuses, sink, logger: silentLogger() });
  return Object.assign(state, {
    sink,
    statuses,
    reconciler,
    reconcile() {
      sink.keys.length = 0;
      reconciler.reconcile();
      return sink.keys.map((key) => {
        const status = statuses.desiredStatus(key);
        return status === undefined ? [key, 'removed'] : [key, status.conditions?.find((c) => c.type === 'Programmed')?.reason, status.proxies];
      });
    },
  });
}

function proxy(nodeId: string, namespace: string): ProxyRecord {
  return new ProxyRecord({ streamId: 1, identity: { nodeId, namespace, labels: {}, proxyVersion: '' }, namespace, connectedAt: new Date(0), disconnect: () => undefined });
}

const times = (status: FhirRouteStatus | undefined): unknown[] | undefined => status?.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime]);

describe('StatusReconciler.reconcile over DesiredStatuses', () => {
  it('enqueues every route first, then nothing while nothing changes', () => {
    const w = world([acme, labs]);
    expect(w.statuses.desiredStatus('payers/acme')).toBeUndefined();
    expect(w.reconcile()).toEqual([
      ['payers/acme', 'NoProxies', { total: 0, programmed: 0 }],
      ['labs/labs', 'NoProxies', { total: 0, programmed: 0 }],
    ]);
    expect(w.statuses.entries().map(([key]) => key)).toEqual(['labs/labs', 'payers/acme']);

    w.now = new Date('2026-03-01T00:05:00Z');
    expect(w.reconcile()).toEqual([]);
    expect(w.reconciler.reconcile()).toEqual({ changed: [], removed: [] });
  });

  it('enqueues the routes whose proxies changed: connect, ACK, NACK', () => {
    const w = world([acme, labs]);
    w.reconcile();
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    expect(w.reconcile()).toEqual([
      ['payers/acme', 'Pending', { total: 1, programmed: 0 }],
      ['labs/labs', 'Pending', { total: 1, programmed: 0 }],
    ]);

    gw.acknowledged(w.translation.snapshotFor('payers'));
    expect(w.reconcile()).toEqual([
      ['payers/acme', 'Programmed', { total: 1, programmed: 1 }],
      ['labs/labs', 'Programmed', { total: 1, programmed: 1 }],
    ]);

    // labs changes; gw-1 refuses the new table: only labs' status moves.
    w.translation = translate({ routes: [acme, route({ destination: 'labs', exportTo: ['*'], backend: { url: 'https://v3.example.org' } }, { name: 'labs', namespace: 'labs', generation: 3 })], refs: refsOf() }, 2);
    const refused = w.translation.snapshotFor('payers');
    gw.refused({ version: refused.version, message: 'route labs: bad', table: refused, at: new Date(0) });
    expect(w.reconcile()).toEqual([['labs/labs', 'Nacked', { total: 1, programmed: 0 }]]);
    expect(w.statuses.desiredStatus('labs/labs')?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe(
      `proxy gw-1 (payers) refused version ${refused.version}: route labs: bad; 0 of 1 proxies in scope run generation 3`,
    );
  });

  it('counts the proxies other replicas report, each proxy once, this replica first', () => {
    const w = world([acme]);
    const gw = proxy('gw-1', 'payers');
    gw.acknowledged(w.translation.snapshotFor('payers'));
    w.proxies.push(gw);
    expect(w.reconcile()).toEqual([['payers/acme', 'Programmed', { total: 1, programmed: 1 }]]);
    // Another replica serves gw-2 (nothing ACKed yet) and, from before it moved here, gw-1 on nothing.
    w.remote = [[{ nodeId: 'gw-2', namespace: 'payers', ackedVersion: '', running: undefined }, { nodeId: 'gw-1', namespace: 'payers', ackedVersion: '', running: undefined }]];
    expect(w.reconcile()).toEqual([['payers/acme', 'Pending', { total: 2, programmed: 1 }]]);
  });

  it('enqueues a route that is gone, which then has no desired status', () => {
    const w = world([acme, labs]);
    w.reconcile();
    w.translation = translate({ routes: [acme], refs: refsOf() }, 2);
    expect(w.reconcile()).toEqual([['labs/labs', 'removed']]);
    expect(w.reconciler.reconcile()).toEqual({ changed: [], removed: [] });
  });

  it('keeps lastTransitionTime of conditions whose status did not change', () => {
    const w = world([acme]);
    w.reconcile();
    w.now = new Date('2026-03-01T01:00:00Z');
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    gw.acknowledged(w.translation.snapshotFor('payers'));
    w.reconcile();
    expect(times(w.statuses.desiredStatus('payers/acme'))).toEqual([
      ['Accepted', 'True', '2026-03-01T00:00:00Z'],
      ['ResolvedRefs', 'True', '2026-03-01T00:00:00Z'],
      ['Programmed', 'True', '2026-03-01T01:00:00Z'],
    ]);
  });

  it('keeps the stored lastTransitionTime of a condition that keeps its status (a new leader, a restart)', () => {
    const w = world([acme]);
    // What the previous leader wrote: all True, Accepted since T0, Programmed since T1.
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    gw.acknowledged(w.translation.snapshotFor('payers'));
    w.now = new Date('2026-03-01T02:00:00Z');
    w.stored.set('payers/acme', {
      observedGeneration: 1,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', observedGeneration: 1, lastTransitionTime: '2026-03-01T00:00:00Z' },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: '', observedGeneration: 1, lastTransitionTime: '2026-03-01T00:00:00Z' },
        { type: 'Programmed', status: 'False', reason: 'Pending', message: '', observedGeneration: 1, lastTransitionTime: '2026-03-01T00:30:00Z' },
      ],
    });
    w.reconcile();
    expect(times(w.statuses.desiredStatus('payers/acme'))).toEqual([
      ['Accepted', 'True', '2026-03-01T00:00:00Z'],
      ['ResolvedRefs', 'True', '2026-03-01T00:00:00Z'],
      ['Programmed', 'True', '2026-03-01T02:00:00Z'],
    ]);

    // Not written yet (the stored status still says Pending): a later refresh keeps the time this
    // replica first saw Programmed, instead of moving it at every recount.
    w.now = new Date('2026-03-01T02:10:00Z');
    w.proxies.push(proxy('gw-2', 'labs'));
    expect(w.reconcile()).toEqual([]);
    expect(times(w.statuses.desiredStatus('payers/acme'))?.[2]).toEqual(['Programmed', 'True', '2026-03-01T02:00:00Z']);
  });

  it('is what every reader counts: the routes-by-condition figures are the desired statuses', () => {
    const w = world([acme, labs]);
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    gw.acknowledged(w.translation.snapshotFor('payers'));
    w.reconcile();
    w.proxies.push(proxy('gw-2', 'labs'));
    w.reconcile();
    const counted = w.statuses.conditionCounts().sort((a, b) => `${a.condition}${a.status}`.localeCompare(`${b.condition}${b.status}`));
    expect(counted).toEqual([
      { condition: 'Accepted', status: 'True', routes: 2 },
      { condition: 'Programmed', status: 'False', routes: 1 },
      { condition: 'Programmed', status: 'True', routes: 1 },
      { condition: 'ResolvedRefs', status: 'True', routes: 2 },
    ]);
    expect(w.statuses.entries().map(([key, status]) => [key, status.conditions?.find((c) => c.type === 'Programmed')?.status])).toEqual([
      ['labs/labs', 'False'],
      ['payers/acme', 'True'],
    ]);
  });
});
