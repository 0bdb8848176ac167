// Pins the Kubernetes RouteWatcher over fake informers: it tells compile only of changes that can change
// a table (not status writes, not unreferenced Secrets), and each state's resolver is a snapshot.

import { describe, expect, it } from 'vitest';
import type { FhirRoute } from '../../../../api/index.ts';
import { KubernetesRouteSource, projectSecret, type SecretData, type ServiceEntry } from '../../../../controller/src/kubernetes/internal/kubernetes-route-source.ts';
import type { ResilientInformer } from '../../../../controller/src/kubernetes/internal/resilient-informer.ts';
import { silentLogger } from '../../../../runtime/index.ts';
import { route } from '../../api/route-fixtures.ts';

/** The informer surface the source uses, driven by the test. */
class FakeInformer<T> {
  readonly store = new Map<string, T>();
  readonly listeners: ((key: string, previous: T | undefined, current: T | undefined) => void)[] = [];
  onChange(listener: (key: string, previous: T | undefined, current: T | undefined) => void): void {
    this.listeners.push(listener);
  }
  get(key: string): T | undefined {
    return this.store.get(key);
  }
  keys(): string[] {
    return [...this.store.keys()];
  }
  values(): T[] {
    return [...this.store.values()];
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  set(key: string, value: T | undefined): void {
    const previous = this.store.get(key);
    if (value === undefined) this.store.delete(key);
    else this.store.set(key, value);
    for (const listener of this.listeners) listener(key, previous, value);
  }
}

function secret(data: Record<string, string>): SecretData {
  return projectSecret({ data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])) });
}

async function world(namespace?: string, nowMs?: () => number) {
  const routes = new FakeInformer<FhirRoute>();
  const services = new FakeInformer<ServiceEntry>();
  const secrets = new FakeInformer<SecretData>();
  const source = new KubernetesRouteSource({
    routes: routes as unknown as ResilientInformer<FhirRoute>,
    services: services as unknown as ResilientInformer<ServiceEntry>,
    secrets: secrets as unknown as ResilientInformer<SecretData>,
    ...(namespace === undefined ? {} : { namespace }),
    ...(nowMs === undefined ? {} : { nowMs }),
    logger: silentLogger(),
  });
  let changes = 0;
  const observations: number[] = [];
  source.onChange((observedAtMs) => {
    changes++;
    observations.push(observedAtMs);
  });
  await source.start();
  return { routes, services, secrets, source, changes: () => changes, observations };
}

const acme = route(
  { destination: 'acme', backend: { service: { name: 'fhir', port: 80, scheme: 'https' }, tls: { caSecretRef: 'acme-ca' } } },
  { name: 'acme', namespace: 'payers', uid: 'u1', generation: 1, creationTimestamp: '2026-03-01T00:00:00Z' },
);

describe('KubernetesRouteSource', () => {
  it('ignores status writes and replays, and reacts to spec, generation and uid changes', async () => {
    const w = await world();
    w.routes.set('payers/acme', acme);
    expect(w.changes()).toBe(1);
    w.routes.set('payers/acme', { ...acme, status: { observedGeneration: 1, conditions: [] } });
    w.routes.set('payers/acme', { ...acme, metadata: { ...acme.metadata, resourceVersion: '9' } });
    expect(w.changes()).toBe(1);
    w.routes.set('payers/acme', { ...acme, metadata: { ...acme.metadata, generation: 2 }, spec: { ...acme.spec, allow: { methods: ['GET'] } } });
    expect(w.changes()).toBe(2);
    // Deleted and created again while no one watched: same name, same spec, another uid.
    w.routes.set('payers/acme', { ...acme, metadata: { ...acme.metadata, uid: 'u2', generation: 1 } });
    expect(w.changes()).toBe(3);
    w.routes.set('payers/acme', undefined);
    expect(w.changes()).toBe(4);
    expect(w.source.state().routes).toEqual([]);
  });

  it('reacts to Services and Secrets a route names, and to no others', async () => {
    const w = await world();
    w.routes.set('payers/acme', acme);
    const before = w.changes();
    w.services.set('payers/other', { uid: 's0' });
    w.secrets.set('payers/other-ca', secret({ 'ca.crt': 'PEM0' }));
    expect(w.changes()).toBe(before);
    w.services.set('payers/fhir', { uid: 's1' });
    expect(w.changes()).toBe(before + 1);
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'PEM1', 'unrelated.key': 'x' }));
    expect(w.changes()).toBe(before + 2);
    // A key compile does not read changes: nothing to do.
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'PEM1', 'unrelated.key': 'y' }));
    expect(w.changes()).toBe(before + 2);
    const { refs } = w.source.state();
    expect(refs.service('payers', 'fhir')).toEqual({ exists: true });
    expect(refs.service('payers', 'other')).toEqual({ exists: false });
    expect(refs.secret('payers', 'acme-ca', 'ca.crt')).toBe('PEM1');
    expect(refs.secret('payers', 'acme-ca', 'unrelated.key')).toBeUndefined();
  });

  it('stops reacting to a Service or Secret once the last route naming it drops it or goes', async () => {
    const w = await world();
    // Two routes name the same Service and Secret: each is counted, not just remembered.
    const second = route(acme.spec, { name: 'acme-2', namespace: 'payers', uid: 'u2', generation: 1, creationTimestamp: '2026-03-02T00:00:00Z' });
    w.routes.set('payers/acme', acme);
    w.routes.set('payers/acme-2', second);
    w.routes.set('payers/acme', undefined);
    let before = w.changes();
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'PEM1' }));
    w.services.set('payers/fhir', { uid: 's1' });
    expect(w.changes()).toBe(before + 2);
    // The last one edited to name neither: their changes no longer reach compile.
    w.routes.set('payers/acme-2', { ...second, metadata: { ...second.metadata, generation: 2 }, spec: { ...second.spec, backend: { url: 'https://acme.example.org/fhir' } } });
    before = w.changes();
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'PEM2' }));
    w.services.set('payers/fhir', { uid: 's2' });
    expect(w.changes()).toBe(before);
    // Named again: counted again.
    w.routes.set('payers/acme', acme);
    before = w.changes();
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'PEM3' }));
    expect(w.changes()).toBe(before + 1);
  });

  it('hands out states whose resolver does not change under them', async () => {
    const w = await world();
    w.routes.set('payers/acme', acme);
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'OLD' }));
    const first = w.source.state();
    w.secrets.set('payers/acme-ca', secret({ 'ca.crt': 'NEW' }));
    w.services.set('payers/fhir', { uid: 's1' });
    expect(first.refs.secret('payers', 'acme-ca', 'ca.crt')).toBe('OLD');
    expect(first.refs.service('payers', 'fhir')).toEqual({ exists: false });
    const second = w.source.state();
    expect(second.refs.secret('payers', 'acme-ca', 'ca.crt')).toBe('NEW');
    expect(second.refs.service('payers', 'fhir')).toEqual({ exists: true });
    expect(w.source.state()).toBe(second);
  });

  it('lists routes in key order as they come and go, shares the informer objects, and tells when each event arrived', async () => {
    let now = 100;
    const w = await world(undefined, () => now);
    const named = (name: string, namespace = 'payers'): FhirRoute => route({ destination: name }, { name, namespace, uid: name, generation: 1 });
    const [beta, alpha, labs] = [named('beta'), named('alpha'), named('zeta', 'labs')];
    w.routes.set('payers/beta', beta);
    now = 250;
    w.routes.set('payers/alpha', alpha);
    w.routes.set('labs/zeta', labs);
    const first = w.source.state().routes;
    expect(first).toEqual([labs, alpha, beta]);
    expect(first[1]).toBe(alpha);
    now = 400;
    w.routes.set('payers/alpha', undefined);
    w.routes.set('payers/aaa', named('aaa'));
    expect(w.source.state().routes.map((r) => r.metadata.name)).toEqual(['zeta', 'aaa', 'beta']);
    expect(w.source.state().routes[2]).toBe(beta);
    expect(w.observations).toEqual([100, 250, 250, 400, 400]);
  });

  it('does not judge Services outside the one namespace it watches', async () => {
    const w = await world('payers');
    expect(w.source.description).toBe('kubernetes (namespace payers)');
    expect(w.source.state().refs.service('labs', 'fhir')).toBeUndefined();
    expect(w.source.state().refs.service('payers', 'fhir')).toEqual({ exists: false });
  });
});
