// Calls the status reconciler directly and pins the exact writes it makes: every route at first,
// then only routes whose status changed (a proxy ACK, a NACK, a deleted route), nothing when run twice.

import { describe, expect, it } from 'vitest';
import type { FhirRoute } from '../../../api/index.ts';
import { translate, type Translation } from '../../../controller/src/compile/index.ts';
import { ProxyRecord } from '../../../controller/src/discovery/index.ts';
import { silentLogger } from '../../../controller/src/index.ts';
import { MemoryStatusSink, StatusReconciler } from '../../../controller/src/status/index.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const acme = route({ destination: 'acme' }, { name: 'acme', namespace: 'payers', generation: 1 });
const labs = route({ destination: 'labs', exportTo: ['*'] }, { name: 'labs', namespace: 'labs', generation: 2 });

interface World {
  translation: Translation;
  proxies: ProxyRecord[];
  now: Date;
  sink: MemoryStatusSink;
  reconciler: StatusReconciler;
}

/** A reconciler reading state the test changes between reconciles. */
function world(routes: FhirRoute[]): World {
  const sink = new MemoryStatusSink();
  const state = { translation: translate({ routes, refs: refsOf() }, 1), proxies: [] as ProxyRecord[], now: new Date('2026-03-01T00:00:00Z') };
  const reconciler = new StatusReconciler({
    sink,
    translation: () => state.translation,
    proxies: () => state.proxies,
    logger: silentLogger(),
    now: () => state.now,
  });
  return Object.assign(state, { sink, reconciler });
}

function proxy(nodeId: string, namespace: string): ProxyRecord {
  return new ProxyRecord({ streamId: 1, identity: { nodeId, namespace, labels: {}, proxyVersion: '' }, namespace, connectedAt: new Date(0), disconnect: () => undefined });
}

const programmed = (writes: { key: string; status: { conditions?: { type: string; reason: string }[]; proxies?: unknown } }[]): unknown[] =>
  writes.map((w) => [w.key, w.status.conditions?.find((c) => c.type === 'Programmed')?.reason, w.status.proxies]);

describe('StatusReconciler.reconcile', () => {
  it('writes every route first, then nothing while nothing changes', () => {
    const w = world([acme, labs]);
    const first = w.reconciler.reconcile();
    expect(programmed(first.published)).toEqual([
      ['payers/acme', 'NoProxies', { total: 0, programmed: 0 }],
      ['labs/labs', 'NoProxies', { total: 0, programmed: 0 }],
    ]);
    expect(first.removed).toEqual([]);
    expect(w.sink.entries().map(([key]) => key)).toEqual(['labs/labs', 'payers/acme']);

    w.now = new Date('2026-03-01T00:05:00Z');
    expect(w.reconciler.reconcile()).toEqual({ published: [], removed: [] });
  });

  it('writes the routes whose proxies changed: connect, ACK, NACK', () => {
    const w = world([acme, labs]);
    w.reconciler.reconcile();
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    expect(programmed(w.reconciler.reconcile().published)).toEqual([
      ['payers/acme', 'Pending', { total: 1, programmed: 0 }],
      ['labs/labs', 'Pending', { total: 1, programmed: 0 }],
    ]);

    gw.acknowledged(w.translation.snapshotFor('payers'));
    expect(programmed(w.reconciler.reconcile().published)).toEqual([
      ['payers/acme', 'Programmed', { total: 1, programmed: 1 }],
      ['labs/labs', 'Programmed', { total: 1, programmed: 1 }],
    ]);

    // labs changes; gw-1 refuses the new table: only labs' status moves.
    w.translation = translate({ routes: [acme, route({ destination: 'labs', exportTo: ['*'], backend: { url: 'https://v3.example.org' } }, { name: 'labs', namespace: 'labs', generation: 3 })], refs: refsOf() }, 2);
    const refused = w.translation.snapshotFor('payers');
    gw.refused({ version: refused.version, message: 'route labs: bad', table: refused, at: new Date(0) });
    const writes = w.reconciler.reconcile();
    expect(programmed(writes.published)).toEqual([['labs/labs', 'Nacked', { total: 1, programmed: 0 }]]);
    expect(writes.published[0]?.status.conditions?.find((c) => c.type === 'Programmed')?.message).toBe(
      `proxy gw-1 (payers) refused version ${refused.version}: route labs: bad; 0 of 1 proxies in scope run generation 3`,
    );
  });

  it('removes the status of a route that is gone', () => {
    const w = world([acme, labs]);
    w.reconciler.reconcile();
    w.translation = translate({ routes: [acme], refs: refsOf() }, 2);
    expect(w.reconciler.reconcile()).toEqual({ published: [], removed: ['labs/labs'] });
    expect(w.sink.get('labs/labs')).toBeUndefined();
  });

  it('keeps lastTransitionTime of conditions whose status did not change', () => {
    const w = world([acme]);
    w.reconciler.reconcile();
    w.now = new Date('2026-03-01T01:00:00Z');
    const gw = proxy('gw-1', 'payers');
    w.proxies.push(gw);
    gw.acknowledged(w.translation.snapshotFor('payers'));
    w.reconciler.reconcile();
    expect(w.sink.get('payers/acme')?.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['Accepted', 'True', '2026-03-01T00:00:00Z'],
      ['ResolvedRefs', 'True', '2026-03-01T00:00:00Z'],
      ['Programmed', 'True', '2026-03-01T01:00:00Z'],
    ]);
  });
});
