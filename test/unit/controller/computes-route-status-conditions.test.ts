// Pins the status of a FhirRoute as computeRouteStatus writes it: the exact Accepted, ResolvedRefs
// and Programmed conditions for each situation, proxy counts, and when lastTransitionTime moves.

import { describe, expect, it } from 'vitest';
import type { Condition, FhirRouteStatus, RouteResult } from '../../../api/index.ts';
import type { ProxyGroup } from '../../../controller/src/status/internal/proxy-groups.ts';
import { computeRouteStatus } from '../../../controller/src/status/internal/route-status.ts';
import { route } from '../api/route-fixtures.ts';

const NOW = new Date('2026-03-01T12:00:00.250Z');
const NOW_TEXT = '2026-03-01T12:00:00Z';
const EARLIER = '2026-02-01T08:00:00Z';

const acme = route({ destination: 'acme-payer' }, { name: 'acme-payer', namespace: 'payers', generation: 4 });

function result(overrides: Partial<RouteResult> = {}): RouteResult {
  return {
    key: 'payers/acme-payer',
    generation: 4,
    accepted: true,
    acceptedReason: 'Accepted',
    resolvedRefs: true,
    resolvedRefsReason: 'ResolvedRefs',
    message: 'routes destination acme-payer',
    acceptedMessage: 'routes destination acme-payer',
    resolvedRefsMessage: 'all references resolved',
    ...overrides,
  };
}

function group(namespace: string, nodeIds: string[], running?: Record<string, number>, nack?: { version: string; message: string; routes: Record<string, number> }): ProxyGroup {
  return {
    namespace,
    ackedVersion: running === undefined ? '' : 'acked',
    nodeIds,
    running: running === undefined ? undefined : new Map(Object.entries(running)),
    ...(nack === undefined ? {} : { nack: { version: nack.version, message: nack.message, routes: new Map(Object.entries(nack.routes)) } }),
  };
}

const ACCEPTED: Condition = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'routes destination acme-payer', observedGeneration: 4, lastTransitionTime: NOW_TEXT };
const RESOLVED: Condition = { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all references resolved', observedGeneration: 4, lastTransitionTime: NOW_TEXT };

function programmed(status: FhirRouteStatus): unknown {
  return status.conditions?.find((c) => c.type === 'Programmed');
}

describe('computeRouteStatus', () => {
  it('is Programmed once every proxy in scope runs this generation', () => {
    const status = computeRouteStatus({
      route: acme,
      result: result(),
      proxies: [group('payers', ['gw-1', 'gw-2'], { 'payers/acme-payer': 4 }), group('labs', ['gw-3'], {})],
      previous: undefined,
      now: NOW,
    });
    expect(status).toEqual({
      observedGeneration: 4,
      conditions: [
        ACCEPTED,
        RESOLVED,
        { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'all 2 proxies in scope run generation 4', observedGeneration: 4, lastTransitionTime: NOW_TEXT },
      ],
      proxies: { total: 2, programmed: 2 },
    });
  });

  it('is Pending, with counts, while some proxies in scope run an older generation or nothing yet', () => {
    const status = computeRouteStatus({
      route: acme,
      result: result(),
      proxies: [group('payers', ['gw-1'], { 'payers/acme-payer': 4 }), group('payers', ['gw-2'], { 'payers/acme-payer': 3 }), group('payers', ['gw-3'])],
      previous: undefined,
      now: NOW,
    });
    expect(programmed(status)).toEqual({
      type: 'Programmed',
      status: 'False',
      reason: 'Pending',
      message: '1 of 3 proxies in scope run generation 4',
      observedGeneration: 4,
      lastTransitionTime: NOW_TEXT,
    });
    expect(status.proxies).toEqual({ total: 3, programmed: 1 });
  });

  it('is NoProxies when no connected proxy serves a namespace the route is exported to', () => {
    const status = computeRouteStatus({ route: acme, result: result(), proxies: [group('labs', ['gw-3'], {})], previous: undefined, now: NOW });
    expect(programmed(status)).toMatchObject({ status: 'False', reason: 'NoProxies', message: 'no connected proxy serves a namespace this route is exported to (payers)' });
    expect(status.proxies).toEqual({ total: 0, programmed: 0 });
  });

  it('counts proxies of every namespace for exportTo "*"', () => {
    const everywhere = route({ destination: 'acme-payer', exportTo: ['*'] }, { name: 'acme-payer', namespace: 'payers', generation: 4 });
    const status = computeRouteStatus({
      route: everywhere,
      result: result(),
      proxies: [group('payers', ['gw-1'], { 'payers/acme-payer': 4 }), group('labs', ['gw-3'], { 'payers/acme-payer': 4 })],
      previous: undefined,
      now: NOW,
    });
    expect(status.proxies).toEqual({ total: 2, programmed: 2 });
  });

  it('is Nacked, naming the proxy and its message, when a proxy refused a version holding this generation', () => {
    const status = computeRouteStatus({
      route: acme,
      result: result(),
      proxies: [
        group('payers', ['gw-1'], { 'payers/acme-payer': 4 }),
        group('payers', ['gw-2', 'gw-5'], { 'payers/acme-payer': 3 }, { version: 'abc123', message: 'route acme-payer: bad CA', routes: { 'payers/acme-payer': 4 } }),
      ],
      previous: undefined,
      now: NOW,
    });
    expect(programmed(status)).toEqual({
      type: 'Programmed',
      status: 'False',
      reason: 'Nacked',
      message: 'proxy gw-2 (payers) (and 1 more proxy) refused version abc123: route acme-payer: bad CA; 1 of 3 proxies in scope run generation 4',
      observedGeneration: 4,
      lastTransitionTime: NOW_TEXT,
    });
  });

  it("cuts a NACK message to the CRD's maxLength, so the apiserver cannot refuse the status", () => {
    const status = computeRouteStatus({
      route: acme,
      result: result(),
      proxies: [group('payers', ['gw-1'], { 'payers/acme-payer': 3 }, { version: 'v2', message: 'x'.repeat(40_000), routes: { 'payers/acme-payer': 4 } })],
      previous: undefined,
      now: NOW,
    });
    const message = status.conditions?.find((c) => c.type === 'Programmed')?.message ?? '';
    expect(message.length).toBe(32_768);
    expect(message.startsWith('proxy gw-1 (payers) refused version v2: xxx')).toBe(true);
    expect(message.endsWith('x…')).toBe(true);
  });

  it('does not blame a NACK of an older generation', () => {
    const status = computeRouteStatus({
      route: acme,
      result: result(),
      proxies: [group('payers', ['gw-2'], { 'payers/acme-payer': 3 }, { version: 'old', message: 'no', routes: { 'payers/acme-payer': 3 } })],
      previous: undefined,
      now: NOW,
    });
    expect(programmed(status)).toMatchObject({ reason: 'Pending' });
  });

  it.each([
    ['Invalid', { accepted: false, acceptedReason: 'Invalid', acceptedMessage: 'spec.backend.url: is required' }, 'Accepted', 'Invalid', 'spec.backend.url: is required'],
    [
      'Conflicted',
      { accepted: false, acceptedReason: 'Conflicted', acceptedMessage: 'destination acme-payer is already claimed by payers/old (older); choose another destination id' },
      'Accepted',
      'Conflicted',
      'destination acme-payer is already claimed by payers/old (older); choose another destination id',
    ],
    [
      'FileNotFound',
      { resolvedRefs: false, resolvedRefsReason: 'FileNotFound', resolvedRefsMessage: 'spec.backend.tls.caFile: cannot read ca.pem' },
      'ResolvedRefs',
      'FileNotFound',
      'spec.backend.tls.caFile: cannot read ca.pem',
    ],
  ] as const)('is not Programmed for a %s route, with the same reason', (_what, overrides, failing, reason, message) => {
    const status = computeRouteStatus({
      route: acme,
      result: result(overrides),
      proxies: [group('payers', ['gw-1'], {})],
      previous: undefined,
      now: NOW,
    });
    expect(status.conditions?.find((c) => c.type === failing)).toEqual({ type: failing, status: 'False', reason, message, observedGeneration: 4, lastTransitionTime: NOW_TEXT });
    expect(programmed(status)).toEqual({
      type: 'Programmed',
      status: 'False',
      reason,
      message: `not sent to proxies: ${message}`,
      observedGeneration: 4,
      lastTransitionTime: NOW_TEXT,
    });
    expect(status.proxies).toEqual({ total: 1, programmed: 0 });
  });

  it('keeps lastTransitionTime while a condition keeps its status, and moves it when the status changes', () => {
    const previous: FhirRouteStatus = {
      observedGeneration: 3,
      conditions: [
        { ...ACCEPTED, observedGeneration: 3, lastTransitionTime: EARLIER },
        { ...RESOLVED, observedGeneration: 3, lastTransitionTime: EARLIER },
        { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'all 1 proxies in scope run generation 3', observedGeneration: 3, lastTransitionTime: EARLIER },
      ],
      proxies: { total: 1, programmed: 1 },
    };
    const status = computeRouteStatus({ route: acme, result: result(), proxies: [group('payers', ['gw-1'], { 'payers/acme-payer': 3 })], previous, now: NOW });
    expect(status.conditions?.map((c) => [c.type, c.status, c.observedGeneration, c.lastTransitionTime])).toEqual([
      ['Accepted', 'True', 4, EARLIER],
      ['ResolvedRefs', 'True', 4, EARLIER],
      ['Programmed', 'False', 4, NOW_TEXT],
    ]);
  });
});
