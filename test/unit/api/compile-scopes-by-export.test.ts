// Pins which routes reach a proxy in a given namespace: its own namespace's routes unless exportTo
// says otherwise, the namespaces listed, or every namespace for "*".
import { describe, expect, it } from 'vitest';
import { compileRoutes } from '../../../api/index.ts';
import { refsOf, route } from './route-fixtures.ts';

const routes = [
  route({ destination: 'own-only' }, { name: 'own-only', namespace: 'payers' }),
  route({ destination: 'to-labs', exportTo: ['labs'] }, { name: 'to-labs', namespace: 'payers' }),
  route({ destination: 'to-all', exportTo: ['*'] }, { name: 'to-all', namespace: 'payers' }),
  route({ destination: 'labs-own' }, { name: 'labs-own', namespace: 'labs' }),
];

function visibleIn(proxyNamespace?: string): string[] {
  const { snapshot } = compileRoutes(routes, refsOf(), proxyNamespace === undefined ? {} : { proxyNamespace });
  return snapshot.routes.map((r) => r.destinationId);
}

describe('compileRoutes scopes the table to the proxy namespace', () => {
  it.each([
    ['payers', ['own-only', 'to-all']],
    ['labs', ['labs-own', 'to-all', 'to-labs']],
    ['elsewhere', ['to-all']],
  ])('a proxy in %s sees %j', (namespace, expected) => {
    expect(visibleIn(namespace)).toEqual(expected);
  });

  it('puts every accepted route in the table when no proxy namespace is given', () => {
    expect(visibleIn()).toEqual(['labs-own', 'own-only', 'to-all', 'to-labs']);
  });

  it('records the effective exportTo, the route\'s own namespace when absent', () => {
    const { snapshot } = compileRoutes(routes, refsOf());
    expect(Object.fromEntries(snapshot.routes.map((r) => [r.destinationId, r.exportTo]))).toEqual({
      'labs-own': ['labs'],
      'own-only': ['payers'],
      'to-all': ['*'],
      'to-labs': ['labs'],
    });
  });
});
