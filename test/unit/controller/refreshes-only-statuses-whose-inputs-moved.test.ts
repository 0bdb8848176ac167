// Pins incremental status: DesiredStatuses.refresh computes again only the routes whose inputs moved
// (the route or its verdict, its stored status, the proxies of a namespace it is exported to), counted
// at computeRouteStatus; and over random sequences of changes it says exactly what computing every
// route again says (statuses, the keys it reports, the condition counts).

import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FhirRoute, FhirRouteStatus } from '../../../api/index.ts';
import { translate, type Translation } from '../../../controller/src/compile/index.ts';
import { ProxyRecord } from '../../../controller/src/discovery/index.ts';
import { DesiredStatuses, viewsOfRecords, type ProxyView } from '../../../controller/src/status/index.ts';
import { groupViews, mergeViews } from '../../../controller/src/status/internal/proxy-groups.ts';
import * as routeStatus from '../../../controller/src/status/internal/route-status.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const computed: string[] = [];
vi.mock('../../../controller/src/status/internal/route-status.ts', async (importOriginal) => {
  const original = await importOriginal<typeof routeStatus>();
  return {
    ...original,
    computeRouteStatus: (input: routeStatus.RouteStatusInput) => {
      computed.push(input.result.key);
      return original.computeRouteStatus(input);
    },
  };
});

beforeEach(() => {
  computed.length = 0;
});

function proxy(nodeId: string, namespace: string): ProxyRecord {
  return new ProxyRecord({ streamId: 1, identity: { nodeId, namespace, labels: {}, proxyVersion: '' }, namespace, connectedAt: new Date(0), disconnect: () => undefined });
}

const payersRoutes = Array.from({ length: 5 }, (_, i) => route({ destination: `p${i}` }, { name: `p${i}`, namespace: 'payers', generation: 1 }));
const labsRoutes = Array.from({ length: 5 }, (_, i) => route({ destination: `l${i}` }, { name: `l${i}`, namespace: 'labs', generation: 1 }));
const everywhere = route({ destination: 'all', exportTo: ['*'] }, { name: 'all', namespace: 'labs', generation: 1 });

describe('DesiredStatuses.refresh', () => {
  it('computes again only the routes whose route, stored status or proxies in scope moved', () => {
    let translation = translate({ routes: [...payersRoutes, ...labsRoutes, everywhere], refs: refsOf() }, 1);
    const proxies = [proxy('gw-p', 'payers'), proxy('gw-l', 'labs')];
    const stored = new Map<string, FhirRouteStatus>();
    const statuses = new DesiredStatuses({ translation: () => translation, proxyViews: () => [viewsOfRecords(proxies)], stored: (key) => stored.get(key) });

    statuses.refresh();
    expect(computed).toHaveLength(11);

    computed.length = 0;
    expect(statuses.refresh()).toEqual({ changed: [], removed: [] });
    expect(computed).toEqual([]);

    // A labs proxy ACKs: labs' routes and the one exported everywhere, not payers'.
    proxies[1]?.acknowledged(translation.snapshotFor('labs'));
    expect(statuses.refresh().changed.sort()).toEqual(['labs/all', 'labs/l0', 'labs/l1', 'labs/l2', 'labs/l3', 'labs/l4']);
    expect(computed.sort()).toEqual(['labs/all', 'labs/l0', 'labs/l1', 'labs/l2', 'labs/l3', 'labs/l4']);

    // One route changes: it alone, although the translation is new.
    computed.length = 0;
    const routes = [...payersRoutes, ...labsRoutes, everywhere];
    routes[2] = route({ destination: 'p2', backend: { url: 'https://v2.example.org' } }, { name: 'p2', namespace: 'payers', generation: 2 });
    translation = translate({ routes, refs: refsOf() }, 2, translation);
    expect(statuses.refresh().changed).toEqual(['payers/p2']);
    expect(computed).toEqual(['payers/p2']);

    // Its stored status is written (another object): it alone is looked at again, and stays.
    computed.length = 0;
    stored.set('payers/p2', statuses.desiredStatus('payers/p2') as FhirRouteStatus);
    expect(statuses.refresh().changed).toEqual([]);
    expect(computed).toEqual(['payers/p2']);
  });

  it('says what computing every route again says, whatever changes in between', () => {
    const namespaces = ['payers', 'labs', 'other'];
    const routeArb = fc
      .record({ n: fc.integer({ min: 0, max: 5 }), namespace: fc.constantFrom(...namespaces), generation: fc.integer({ min: 1, max: 3 }), exportTo: fc.constantFrom<(string[] | undefined)[]>(undefined, ['*'], ['labs', 'other']) })
      .map(({ n, namespace, generation, exportTo }) => route({ destination: `d${n}`, ...(exportTo === undefined ? {} : { exportTo }) }, { name: `r${n}`, namespace, generation }));
    const step = fc.oneof(
      fc.record({ kind: fc.constant('routes' as const), routes: fc.array(routeArb, { maxLength: 6 }), keep: fc.boolean() }),
      fc.record({ kind: fc.constant('connect' as const), node: fc.integer({ min: 0, max: 3 }), namespace: fc.constantFrom(...namespaces) }),
      fc.record({ kind: fc.constant('ack' as const), node: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('nack' as const), node: fc.integer({ min: 0, max: 3 }), message: fc.constantFrom('bad', 'worse') }),
      fc.record({ kind: fc.constant('disconnect' as const), node: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('remote' as const), node: fc.integer({ min: 0, max: 3 }), namespace: fc.constantFrom(...namespaces) }),
      fc.record({ kind: fc.constant('store' as const), pick: fc.nat(), shift: fc.boolean() }),
      fc.record({ kind: fc.constant('tick' as const) }),
    );
    fc.assert(
      fc.property(fc.array(routeArb, { maxLength: 6 }), fc.array(step, { minLength: 1, maxLength: 20 }), (initial, steps) => {
        let routes: FhirRoute[] = initial;
        let translation: Translation = translate({ routes, refs: refsOf() }, 0);
        const proxies = new Map<number, ProxyRecord>();
        let remote: ProxyView[] = [];
        const stored = new Map<string, FhirRouteStatus>();
        let now = new Date('2026-03-01T00:00:00Z');
        const options = { translation: () => translation, proxyViews: () => [viewsOfRecords([...proxies.values()]), remote], stored: (key: string) => stored.get(key), now: () => now };
        const statuses = new DesiredStatuses(options);
        const reference = new FromScratch(options);
        for (const [index, change] of steps.entries()) {
          switch (change.kind) {
            case 'routes':
              routes = change.keep ? [...routes.slice(0, 2), ...change.routes] : change.routes;
              translation = translate({ routes, refs: refsOf() }, index + 1, translation);
              break;
            case 'connect':
              proxies.set(change.node, proxy(`gw-${change.node}`, change.namespace));
              break;
            case 'ack': {
              const record = proxies.get(change.node);
              record?.acknowledged(translation.snapshotFor(record.namespace));
              break;
            }
            case 'nack': {
              const record = proxies.get(change.node);
              const table = record === undefined ? undefined : translation.snapshotFor(record.namespace);
              if (record !== undefined && table !== undefined) record.refused({ version: table.version, message: change.message, table, at: new Date(0) });
              break;
            }
            case 'disconnect':
              proxies.delete(change.node);
              break;
            case 'remote':
              remote = [{ nodeId: `gw-${change.node}`, namespace: change.namespace, ackedVersion: '', running: undefined }];
              break;
            case 'store': {
              // What a writer (this leader, or another) stored: the desired status, or one with other times.
              const keys = statuses.keys();
              const key = keys[change.pick % Math.max(keys.length, 1)];
              const status = key === undefined ? undefined : statuses.desiredStatus(key);
              if (key !== undefined && status !== undefined) {
                stored.set(key, change.shift ? { ...status, conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: '2026-01-01T00:00:00Z' })) } : status);
              }
              break;
            }
            case 'tick':
              now = new Date(now.getTime() + 60_000);
              break;
          }
          const changes = statuses.refresh();
          const expected = reference.refresh();
          expect({ changed: [...changes.changed].sort(), removed: [...changes.removed].sort() }).toEqual({ changed: [...expected.changed].sort(), removed: [...expected.removed].sort() });
          expect(statuses.entries()).toEqual(reference.entries());
          const byId = (counts: { condition: string; status: string }[]): unknown[] => counts.map((c) => c).sort((a, b) => `${a.condition}${a.status}`.localeCompare(`${b.condition}${b.status}`));
          expect(byId(statuses.conditionCounts())).toEqual(byId(reference.conditionCounts()));
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** The computation before it was incremental: every route computed again at every refresh, compared as JSON. */
class FromScratch {
  #statuses = new Map<string, FhirRouteStatus>();
  readonly options: { translation: () => Translation; proxyViews: () => ProxyView[][]; stored: (key: string) => FhirRouteStatus | undefined; now: () => Date };
  constructor(options: FromScratch['options']) {
    this.options = options;
  }

  refresh(): { changed: string[]; removed: string[] } {
    const changes = { changed: [] as string[], removed: [] as string[] };
    const translation = this.options.translation();
    const proxies = groupViews(mergeViews(this.options.proxyViews()));
    const next = new Map<string, FhirRouteStatus>();
    translation.routes.forEach((route, index) => {
      const result = translation.results[index];
      if (result === undefined || next.has(result.key)) return;
      const last = this.#statuses.get(result.key);
      const stored = this.options.stored(result.key);
      const previous =
        stored === undefined || last === undefined
          ? (stored ?? last ?? route.status)
          : { conditions: (last.conditions ?? []).map((c) => { const w = stored.conditions?.find((s) => s.type === c.type); return w?.status === c.status ? w : c; }) };
      const status = routeStatus.computeRouteStatus({ route, result, proxies, previous, now: this.options.now() });
      if (last !== undefined && JSON.stringify(last) === JSON.stringify(status)) next.set(result.key, last);
      else {
        next.set(result.key, status);
        changes.changed.push(result.key);
      }
    });
    for (const key of this.#statuses.keys()) if (!next.has(key)) changes.removed.push(key);
    this.#statuses = next;
    return changes;
  }

  entries(): [string, FhirRouteStatus][] {
    return [...this.#statuses].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  conditionCounts(): { condition: string; status: string; routes: number }[] {
    const counts = new Map<string, { condition: string; status: string; routes: number }>();
    for (const status of this.#statuses.values()) {
      for (const c of status.conditions ?? []) {
        const entry = counts.get(`${c.type}=${c.status}`) ?? { condition: c.type, status: c.status, routes: 0 };
        entry.routes++;
        counts.set(`${c.type}=${c.status}`, entry);
      }
    }
    return [...counts.values()];
  }
}
