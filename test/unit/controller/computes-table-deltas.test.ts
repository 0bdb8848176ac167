// Pins what a discovery response carries: a full snapshot is the whole table; a delta upserts
// exactly the routes whose content changed and removes exactly the ids that left the scope.

import { describe, expect, it } from 'vitest';
import type { FhirRoute } from '../../../api/index.ts';
import { translate } from '../../../controller/src/compile/index.ts';
import { deltaBetween, fullSnapshotOf } from '../../../controller/src/discovery/table-delta.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const table = (routes: FhirRoute[]) => translate({ routes, refs: refsOf() }, 1).snapshotFor('payers');
const r = (name: string, url = `https://${name}.example.org/fhir`, generation = 1): FhirRoute =>
  route({ destination: name, backend: { url } }, { name, namespace: 'payers', generation });

describe('table deltas', () => {
  it('puts the whole table in a full snapshot, with no base version', () => {
    const target = table([r('beta'), r('acme')]);
    const full = fullSnapshotOf(target);
    expect(full).toMatchObject({ fullSnapshot: true, baseVersion: '', removed: [] });
    expect(full.upserted.map((u) => u.destinationId)).toEqual(['acme', 'beta']);
  });

  it('upserts changed and new routes, removes gone ones, on top of the acked version', () => {
    const acked = table([r('acme'), r('beta'), r('gamma')]);
    const target = table([r('acme', 'https://acme-v2.example.org/fhir', 2), r('gamma'), r('delta')]);
    const delta = deltaBetween(acked, target);
    expect(delta).toMatchObject({ fullSnapshot: false, baseVersion: acked.version, removed: ['beta'] });
    expect(delta.upserted.map((u) => [u.destinationId, u.backend?.baseUrl, u.source?.generation])).toEqual([
      ['acme', 'https://acme-v2.example.org/fhir', 2],
      ['delta', 'https://delta.example.org/fhir', 1],
    ]);
  });

  it('counts a new generation with the same spec as a change (status tracks generations)', () => {
    const delta = deltaBetween(table([r('acme')]), table([r('acme', undefined, 2)]));
    expect(delta.upserted.map((u) => u.source?.generation)).toEqual([2]);
  });

  it('is empty between equal tables', () => {
    expect(deltaBetween(table([r('acme')]), table([r('acme')]))).toMatchObject({ upserted: [], removed: [] });
  });
});
