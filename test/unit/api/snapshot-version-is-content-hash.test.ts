// Pins the snapshot version: a hash of the compiled table's content, so an unchanged table keeps its
// version (no needless pushes to proxies) and any change to what a proxy runs gives a new one.
import { describe, expect, it } from 'vitest';
import { compileRoutes } from '../../../api/index.ts';
import { refsOf, route } from './route-fixtures.ts';

const a = route({ destination: 'a' }, { name: 'a', generation: 1 });
const b = route({ destination: 'b', addressing: { pathSegment: true } }, { name: 'b', generation: 1 });

function versionOf(...routes: Parameters<typeof compileRoutes>[0]): string {
  return compileRoutes(routes, refsOf()).snapshot.version;
}

describe('the snapshot version', () => {
  it('is 16 hex digits and the same for the same routes in any order', () => {
    expect(versionOf(a, b)).toMatch(/^[0-9a-f]{16}$/);
    expect(versionOf(b, a)).toBe(versionOf(a, b));
  });

  it('ignores routes that do not reach the table', () => {
    const invalid = route({ destination: 'Nope' }, { name: 'invalid' });
    expect(versionOf(a, b, invalid)).toBe(versionOf(a, b));
  });

  it('changes when anything a proxy runs changes', () => {
    const base = versionOf(a, b);
    expect(versionOf(a, route({ ...b.spec, timeouts: { idle: '61s' } }, { name: 'b', generation: 1 }))).not.toBe(base);
    expect(versionOf(a, route(b.spec, { name: 'b', generation: 2 }))).not.toBe(base);
    expect(versionOf(a)).not.toBe(base);
    expect(versionOf()).not.toBe(versionOf(a));
  });

  it('does not change when a default is written out explicitly', () => {
    const explicit = route({ destination: 'a', timeouts: { connect: '2s' }, retries: { attempts: 0 } }, { name: 'a', generation: 1 });
    expect(versionOf(explicit)).toBe(versionOf(a));
  });
});
