// Pins the translator: one verdict per route over all routes, and per-namespace tables that equal
// compileRoutes with proxyNamespace, computed on first use and cached until the state changes.

import { describe, expect, it } from 'vitest';
import { encodeRoute } from '../../../api/discovery/index.ts';
import { compileRoutes } from '../../../api/index.ts';
import { translate } from '../../../controller/src/compile/index.ts';
import type { SourceState } from '../../../controller/src/sources/index.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const state: SourceState = {
  routes: [
    route({ destination: 'own-only' }, { name: 'own-only', namespace: 'payers', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' }),
    route({ destination: 'to-all', exportTo: ['*'] }, { name: 'to-all', namespace: 'payers', generation: 1 }),
    route({ destination: 'labs-own' }, { name: 'labs-own', namespace: 'labs', generation: 1 }),
    route({ destination: 'own-only' }, { name: 'usurper', namespace: 'labs', generation: 1, creationTimestamp: '2026-02-01T00:00:00Z' }),
    route({ destination: 'ca-missing', backend: { url: 'https://x.example.org', tls: { caFile: 'ca.pem' } } }, { name: 'ca-missing', namespace: 'payers', generation: 1 }),
  ],
  refs: refsOf(),
};

describe('translate', () => {
  it('gives one verdict per route, in source order, over every namespace', () => {
    const translation = translate(state, 7);
    expect(translation.sequence).toBe(7);
    expect(translation.results.map((r) => [r.key, r.generation, r.acceptedReason, r.resolvedRefsReason])).toEqual([
      ['payers/own-only', 3, 'Accepted', 'ResolvedRefs'],
      ['payers/to-all', 1, 'Accepted', 'ResolvedRefs'],
      ['labs/labs-own', 1, 'Accepted', 'ResolvedRefs'],
      ['labs/usurper', 1, 'Conflicted', 'ResolvedRefs'],
      ['payers/ca-missing', 1, 'Accepted', 'FileNotFound'],
    ]);
    expect(translation.version).toBe(compileRoutes([...state.routes], state.refs).snapshot.version);
  });

  it.each([
    ['payers', ['own-only', 'to-all']],
    ['labs', ['labs-own', 'to-all']],
    ['elsewhere', ['to-all']],
  ])('builds the %s table exactly as compileRoutes scopes it: %j', (namespace, destinations) => {
    const table = translate(state, 1).snapshotFor(namespace);
    const expected = compileRoutes([...state.routes], state.refs, { proxyNamespace: namespace }).snapshot;
    expect(table.namespace).toBe(namespace);
    expect(table.version).toBe(expected.version);
    expect([...table.entries.keys()]).toEqual(destinations);
    expect([...table.entries.values()].map((e) => e.route)).toEqual(expected.routes);
    expect([...table.entries.values()].map((e) => e.wire)).toEqual(expected.routes.map(encodeRoute));
  });

  it('computes a namespace table once per translation and shares a route entry between namespaces', () => {
    const translation = translate(state, 1);
    const payers = translation.snapshotFor('payers');
    expect(translation.snapshotFor('payers')).toBe(payers);
    expect(translation.snapshotFor('labs').entries.get('to-all')).toBe(payers.entries.get('to-all'));
  });

  it('gives equal fingerprints to equal routes and different ones when a route changes', () => {
    const before = translate(state, 1).snapshotFor('payers');
    const same = translate({ ...state, routes: [...state.routes] }, 2).snapshotFor('payers');
    const changedRoutes = state.routes.map((r) =>
      r.metadata.name === 'to-all' ? route({ destination: 'to-all', exportTo: ['*'], backend: { url: 'https://v2.example.org' } }, { name: 'to-all', namespace: 'payers', generation: 2 }) : r,
    );
    const changed = translate({ ...state, routes: changedRoutes }, 3).snapshotFor('payers');
    expect(same).not.toBe(before);
    expect(same.version).toBe(before.version);
    expect(same.entries.get('to-all')?.fingerprint).toBe(before.entries.get('to-all')?.fingerprint);
    expect(changed.version).not.toBe(before.version);
    expect(changed.entries.get('to-all')?.fingerprint).not.toBe(before.entries.get('to-all')?.fingerprint);
    expect(changed.entries.get('own-only')?.fingerprint).toBe(before.entries.get('own-only')?.fingerprint);
  });
});
