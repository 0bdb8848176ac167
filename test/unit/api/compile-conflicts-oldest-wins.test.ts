// Pins how compileRoutes settles two routes that claim the same destination id or host: the oldest
// wins, the other is Conflicted with a message naming the winner, and nothing is shadowed silently.
import { describe, expect, it } from 'vitest';
import { compileRoutes, type CompileResult } from '../../../api/index.ts';
import { refsOf, route } from './route-fixtures.ts';

const EARLY = '2026-01-01T00:00:00Z';
const LATE = '2026-02-01T00:00:00Z';

function verdicts(result: CompileResult): Record<string, string> {
  return Object.fromEntries(result.results.map((r) => [r.key, `${r.acceptedReason}: ${r.message}`]));
}

function tableOf(result: CompileResult): string[] {
  return result.snapshot.routes.map((r) => `${r.source.namespace}/${r.source.name}`);
}

describe('compileRoutes settles conflicting claims', () => {
  it('gives a destination id to the older route, whatever the input order or names', () => {
    const result = compileRoutes(
      [
        route({}, { name: 'acme-new', namespace: 'payers', creationTimestamp: LATE }),
        route({}, { name: 'zz-acme-old', namespace: 'payers', creationTimestamp: EARLY }),
      ],
      refsOf(),
    );
    expect(verdicts(result)).toEqual({
      'payers/acme-new':
        'Conflicted: destination acme-payer is already claimed by payers/zz-acme-old (older); choose another destination id',
      'payers/zz-acme-old': 'Accepted: routes destination acme-payer',
    });
    expect(result.results.map((r) => r.accepted)).toEqual([false, true]);
    expect(tableOf(result)).toEqual(['payers/zz-acme-old']);
  });

  it('gives a host to the older route across namespaces and names every lost claim', () => {
    const result = compileRoutes(
      [
        route({ destination: 'acme-old', addressing: { hosts: ['fhir.acme.example'] } }, { name: 'old', namespace: 'payers', creationTimestamp: EARLY }),
        route({ destination: 'lab', addressing: { hosts: ['lab.example'] } }, { name: 'lab', namespace: 'labs', creationTimestamp: EARLY }),
        route(
          { destination: 'lab', addressing: { hosts: ['fhir.acme.example', 'lab.example', 'new.example'] } },
          { name: 'new', namespace: 'other', creationTimestamp: LATE },
        ),
      ],
      refsOf(),
    );
    expect(verdicts(result)['other/new']).toBe(
      'Conflicted: destination lab is already claimed by labs/lab (older); choose another destination id; ' +
        'host fhir.acme.example is already claimed by payers/old (older); remove it from addressing.hosts or use another host; ' +
        'host lab.example is already claimed by labs/lab (older); remove it from addressing.hosts or use another host',
    );
    expect(tableOf(result)).toEqual(['payers/old', 'labs/lab']);
  });

  it('breaks a tie of age by namespace, then name, and says so', () => {
    const result = compileRoutes(
      [
        route({}, { name: 'a', namespace: 'zeta', creationTimestamp: EARLY }),
        route({}, { name: 'b', namespace: 'alpha', creationTimestamp: EARLY }),
        route({}, { name: 'a', namespace: 'alpha', creationTimestamp: EARLY }),
      ],
      refsOf(),
    );
    expect(verdicts(result)).toEqual({
      'zeta/a':
        'Conflicted: destination acme-payer is already claimed by alpha/a (same age, first by namespace/name); choose another destination id',
      'alpha/b':
        'Conflicted: destination acme-payer is already claimed by alpha/a (same age, first by namespace/name); choose another destination id',
      'alpha/a': 'Accepted: routes destination acme-payer',
    });
  });

  it('counts a route without creationTimestamp (a routes file) as newer than one with it', () => {
    const result = compileRoutes(
      [route({}, { name: 'a-file' }), route({}, { name: 'z-cluster', creationTimestamp: LATE })],
      refsOf(),
    );
    expect(tableOf(result)).toEqual(['payers/z-cluster']);
  });

  it('lets a loser claim nothing, so it blocks no younger route', () => {
    const result = compileRoutes(
      [
        route({ destination: 'a' }, { name: 'first', creationTimestamp: EARLY }),
        route({ destination: 'a', addressing: { hosts: ['h.example'] } }, { name: 'second', creationTimestamp: '2026-01-15T00:00:00Z' }),
        route({ destination: 'c', addressing: { hosts: ['h.example'] } }, { name: 'third', creationTimestamp: LATE }),
      ],
      refsOf(),
    );
    expect(result.results.map((r) => r.acceptedReason)).toEqual(['Accepted', 'Conflicted', 'Accepted']);
  });

  it('lets an invalid route claim nothing', () => {
    const result = compileRoutes(
      [
        route({ timeouts: { connect: '0s' } }, { name: 'broken', creationTimestamp: EARLY }),
        route({}, { name: 'fine', creationTimestamp: LATE }),
      ],
      refsOf(),
    );
    expect(result.results.map((r) => r.acceptedReason)).toEqual(['Invalid', 'Accepted']);
  });

  it('keeps the claim of a route whose references do not resolve, so a missing Secret hands nothing over', () => {
    const result = compileRoutes(
      [
        route({ backend: { url: 'https://fhir.acme.internal', tls: { caSecretRef: 'gone' } } }, { name: 'old', creationTimestamp: EARLY }),
        route({}, { name: 'new', creationTimestamp: LATE }),
      ],
      refsOf(),
    );
    expect(result.results.map((r) => [r.acceptedReason, r.resolvedRefs])).toEqual([
      ['Accepted', false],
      ['Conflicted', true],
    ]);
    expect(result.snapshot.routes).toEqual([]);
  });

  it('decides over all routes, not only those in the asking proxy\'s scope', () => {
    const routes = [
      route({}, { name: 'hidden-old', namespace: 'payers', creationTimestamp: EARLY }),
      route({ exportTo: ['labs'] }, { name: 'visible-new', namespace: 'labs-team', creationTimestamp: LATE }),
    ];
    const forLabs = compileRoutes(routes, refsOf(), { proxyNamespace: 'labs' });
    const forAll = compileRoutes(routes, refsOf());
    expect(forLabs.results).toEqual(forAll.results);
    expect(verdicts(forLabs)['labs-team/visible-new']).toBe(
      'Conflicted: destination acme-payer is already claimed by payers/hidden-old (older); choose another destination id',
    );
    expect(forLabs.snapshot.routes).toEqual([]);
  });

  it('refuses a second route with the same namespace/name', () => {
    const result = compileRoutes([route(), route({ destination: 'other' })], refsOf());
    expect(verdicts(result)).toEqual({
      'payers/acme-payer':
        'Conflicted: payers/acme-payer is given more than once and only the first is used: remove or rename the other copy',
    });
    expect(result.results.map((r) => r.acceptedReason)).toEqual(['Accepted', 'Conflicted']);
    expect(tableOf(result)).toEqual(['payers/acme-payer']);
    expect(result.snapshot.routes[0]?.destinationId).toBe('acme-payer');
  });
});
