// Property: an incremental translation is exactly the translation from scratch. Random sequences
// of edits (routes added, removed, changed, reordered, listed twice; claims that collide on keys,
// destinations and hosts; exportTo changes; Services, Secrets and files appearing and going), each
// translated from the one before (and now and then from an older one): the verdicts, the versions
// and every namespace's table equal a fresh translate, and a namespace whose routes are the same
// objects keeps the same table object.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRoutes, type FhirRoute, type FhirRouteSpec } from '../../../api/index.ts';
import { translate, type ScopedTable, type Translation } from '../../../controller/src/compile/index.ts';
import type { SourceState } from '../../../controller/src/sources/index.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const NAMESPACES = ['payers', 'labs', 'other'];
/** Namespaces proxies may ask for: the routes' own and one no route is in. */
const ASKED = [...NAMESPACES, 'empty'];

interface World {
  services: Record<string, boolean>;
  secrets: Record<string, string>;
  files: Record<string, string>;
}

const routeArb: fc.Arbitrary<FhirRoute> = fc
  .record({
    name: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
    namespace: fc.constantFrom(...NAMESPACES),
    generation: fc.integer({ min: 1, max: 3 }),
    created: fc.constantFrom(undefined, '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'),
    destination: fc.constantFrom('d1', 'd2', 'd3', 'd4', 'Not-Valid'),
    hosts: fc.subarray(['h1.example', 'h2.example', 'h3.example'], { maxLength: 2 }),
    exportTo: fc.constantFrom<(string[] | undefined)[]>(undefined, ['*'], ['labs'], ['payers', 'other'], []),
    backend: fc.constantFrom<FhirRouteSpec['backend'][]>(
      { url: 'https://one.example/fhir' },
      { url: 'https://two.example/fhir' },
      { service: { name: 'svc', port: 8080 } },
      { service: { name: 'svc', namespace: 'labs', port: 8080 } },
      { url: 'https://tls.example/fhir', tls: { caSecretRef: 'ca' } },
      { url: 'https://tls.example/fhir', tls: { caFile: 'ca.pem', clientCertSecretRef: 'client' } },
    ),
  })
  .map(({ name, namespace, generation, created, destination, hosts, exportTo, backend }) =>
    route(
      { destination, addressing: { header: true, hosts }, backend, ...(exportTo === undefined ? {} : { exportTo }) },
      { name, namespace, generation, ...(created === undefined ? {} : { creationTimestamp: created }) },
    ),
  );

type Edit =
  | { kind: 'add'; at: number; route: FhirRoute }
  | { kind: 'remove'; at: number }
  | { kind: 'replace'; at: number; route: FhirRoute }
  | { kind: 'move'; from: number; to: number }
  | { kind: 'twice'; at: number }
  | { kind: 'refs'; service: boolean; secret: boolean; file: boolean }
  | { kind: 'fork' };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), at: fc.nat(), route: routeArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), route: routeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), from: fc.nat(), to: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('twice' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refs' as const), service: fc.boolean(), secret: fc.boolean(), file: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const) }) },
);

function applyEdit(routes: FhirRoute[], world: World, edit: Edit): void {
  const at = (n: number, length = routes.length): number => (length === 0 ? 0 : n % length);
  switch (edit.kind) {
    case 'add':
      routes.splice(at(edit.at, routes.length + 1), 0, edit.route);
      break;
    case 'remove':
      if (routes.length > 0) routes.splice(at(edit.at), 1);
      break;
    case 'replace':
      if (routes.length > 0) routes[at(edit.at)] = edit.route;
      break;
    case 'move':
      if (routes.length > 0) routes.splice(at(edit.to), 0, ...routes.splice(at(edit.from), 1));
      break;
    case 'twice':
      if (routes.length > 0) routes.push(routes[at(edit.at)] as FhirRoute);
      break;
    case 'refs':
      world.services = edit.service ? { 'payers/svc': true, 'labs/svc': true, 'other/svc': false } : { 'payers/svc': false, 'labs/svc': true };
      world.secrets = edit.secret ? { 'payers/ca/ca.crt': 'CA', 'labs/ca/ca.crt': 'CA', 'other/client/tls.crt': 'C', 'other/client/tls.key': 'K' } : { 'labs/ca/ca.crt': 'CA2' };
      world.files = edit.file ? { 'ca.pem': 'PEM' } : {};
      break;
    case 'fork':
      break;
  }
}

/** What a table is, without identity. */
function contentOf(translation: Translation, namespace: string): unknown {
  const table = translation.snapshotFor(namespace);
  return {
    namespace: table.namespace,
    version: table.version,
    entries: [...table.entries].map(([id, entry]) => [id, entry.route, entry.wire, entry.fingerprint]),
  };
}

describe('translate(state, sequence, previous)', () => {
  it('keeps the table object of a namespace the change does not reach, and every unchanged entry', () => {
    const own = route({ destination: 'own' }, { name: 'own', namespace: 'payers', generation: 1 });
    const lab = route({ destination: 'lab' }, { name: 'lab', namespace: 'labs', generation: 1 });
    const first = translate({ routes: [own, lab], refs: refsOf() }, 1);
    const payers = first.snapshotFor('payers');
    const labs = first.snapshotFor('labs');
    const changed = route({ destination: 'lab', backend: { url: 'https://v2.example.org' } }, { name: 'lab', namespace: 'labs', generation: 2 });
    const second = translate({ routes: [own, changed, route({ destination: 'new' }, { name: 'new', namespace: 'labs' })], refs: refsOf() }, 2, first);
    expect(second.snapshotFor('payers')).toBe(payers);
    expect(second.snapshotFor('labs')).not.toBe(labs);
    expect([...second.snapshotFor('labs').entries.keys()]).toEqual(['lab', 'new']);
    expect(second.results[0]).toBe(first.results[0]);

    // Exported everywhere: every namespace's table is new, the entries that did not change are not.
    const everywhere = route({ destination: 'all', exportTo: ['*'] }, { name: 'all', namespace: 'labs' });
    const third = translate({ routes: [own, changed, everywhere], refs: refsOf() }, 3, second);
    expect(third.snapshotFor('payers')).not.toBe(payers);
    expect(third.snapshotFor('payers').entries.get('own')).toBe(payers.entries.get('own'));
  });

  it('gives exactly what a translation from scratch gives, after any sequence of edits', () => {
    fc.assert(
      fc.property(
        fc.array(routeArb, { maxLength: 8 }),
        fc.array(fc.tuple(editArb, fc.subarray(ASKED)), { minLength: 1, maxLength: 25 }),
        (initial, edits) => {
          const routes = [...initial];
          const world: World = { services: {}, secrets: {}, files: {} };
          const stateOf = (): SourceState => ({ routes: [...routes], refs: refsOf({ services: { ...world.services }, secrets: { ...world.secrets }, files: { ...world.files } }) });
          const history: Translation[] = [translate(stateOf(), 0)];
          const made = new Map<Translation, Map<string, ScopedTable>>();
          for (const [index, [edit, asked]] of edits.entries()) {
            applyEdit(routes, world, edit);
            const state = stateOf();
            const previous = (edit.kind === 'fork' ? history.at(-2) : undefined) ?? history.at(-1);
            if (previous === undefined) throw new Error('the history starts with a translation');
            const incremental = translate(state, index + 1, previous);
            const fresh = translate(state, index + 1);

            expect(incremental.results).toEqual(fresh.results);
            expect(incremental.version).toBe(fresh.version);
            expect(incremental.version).toBe(compileRoutes([...state.routes], state.refs).snapshot.version);
            // Only the namespaces some proxy asks for are made, as in the server: the others stay unmade.
            for (const namespace of index === edits.length - 1 ? ASKED : asked) {
              const now = incremental.snapshotFor(namespace);
              expect(contentOf(incremental, namespace)).toEqual(contentOf(fresh, namespace));
              const before = made.get(previous)?.get(namespace);
              const routesOf = (table: ScopedTable): unknown[] => [...table.entries.values()].map((entry) => entry.route);
              if (before !== undefined && routesOf(before).length === routesOf(now).length && routesOf(before).every((r, i) => r === routesOf(now)[i])) {
                expect(now).toBe(before);
              }
              made.set(incremental, (made.get(incremental) ?? new Map()).set(namespace, now));
            }
            history.push(incremental);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
