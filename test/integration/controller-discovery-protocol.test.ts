// Pins the route discovery stream rules of api/fhirmesh/v1/discovery.proto against the real
// controller on 127.0.0.1:0 (directory source in a temp dir), driven by a raw gRPC fake proxy.

import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RouteWatcher, SourceState } from '../../controller/src/sources/index.ts';
import { ControllerMetrics, createMode, startController, type ControllerConfig, type RunningController } from '../../controller/src/index.ts';
import { silentLogger } from '../../runtime/index.ts';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, getProxyStatus, tableAsJson, type FakeProxy, type FakeProxyOptions } from '../support/fake-proxy.ts';

interface RouteOptions {
  namespace?: string;
  destination?: string;
  backend?: string;
  exportTo?: string[];
  hosts?: string[];
}

function routeYaml(name: string, options: RouteOptions = {}): string {
  const lines = [
    'apiVersion: fhirmesh.io/v1alpha1',
    'kind: FhirRoute',
    `metadata: { name: ${name}, namespace: ${options.namespace ?? 'payers'} }`,
    'spec:',
    `  destination: ${options.destination ?? name}`,
    `  addressing: { header: true${options.hosts === undefined ? '' : `, hosts: [${options.hosts.join(', ')}]`} }`,
    `  backend: { url: ${options.backend ?? `https://${name}.example.org/fhir`} }`,
  ];
  if (options.exportTo !== undefined) lines.push(`  exportTo: [${options.exportTo.map((n) => JSON.stringify(n)).join(', ')}]`);
  return lines.join('\n') + '\n';
}

interface Harness {
  controller: RunningController;
  dir: string;
  metrics: ControllerMetrics;
  /** Writes a file beside, then renames it in: the controller never reads half a file. */
  write(file: string, yaml: string): void;
  remove(file: string): void;
  proxy(options?: Partial<FakeProxyOptions>): FakeProxy;
  /** Target version for a namespace, as the controller computes it now. */
  target(namespace: string): string;
  counter(name: string, labels?: string): Promise<number>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function config(overrides: Partial<ControllerConfig> = {}): ControllerConfig {
  return {
    source: { kind: 'directory', routesDir: '/nonexistent' },
    grpcListen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    batchWindowMs: 30,
    ackTimeoutMs: 5_000,
    logLevel: 'error',
    ...overrides,
  };
}

async function harness(files: Record<string, string>, overrides: Partial<ControllerConfig> = {}, source?: RouteWatcher): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-ctl-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [file, yaml] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), yaml);
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const controllerConfig = config({ source: { kind: 'directory', routesDir: dir }, ...overrides });
  const mode = await createMode(controllerConfig, { logger: silentLogger(), metrics, directoryWatch: { debounceMs: 10, pollMs: 150 } });
  // The binary's mode, with a source the test controls when it gives one.
  const controller = await startController(controllerConfig, { ...mode, controllerId: 'ctl-test', ...(source === undefined ? {} : { source }) });
  cleanups.push(() => controller.shutdown());
  if (source === undefined) await controller.ready;
  let writes = 0;
  return {
    controller,
    dir,
    metrics,
    write(file, yaml) {
      const tmp = path.join(dir, `.${file}.${++writes}.tmp`);
      fs.writeFileSync(tmp, yaml);
      fs.renameSync(tmp, path.join(dir, file));
    },
    remove(file) {
      fs.rmSync(path.join(dir, file));
    },
    proxy(options = {}) {
      const proxy = connectFakeProxy({ address: controller.grpcAddress, ...options });
      cleanups.push(() => proxy.close());
      return proxy;
    },
    target(namespace) {
      const translation = controller.store.current;
      if (translation === undefined) throw new Error('controller has not read its routes yet');
      return translation.snapshotFor(namespace).version;
    },
    async counter(name, labels = '') {
      const text = await metrics.registry.metrics();
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return m === null ? 0 : Number(m[1]);
    },
  };
}

const ids = (routes: readonly { destinationId: string }[]): string[] => routes.map((r) => r.destinationId);

describe('first answer', () => {
  it('answers a proxy without a table with the full snapshot of its namespace at once', async () => {
    const h = await harness({ 'routes.yaml': [routeYaml('acme'), routeYaml('beta'), routeYaml('labs-only', { namespace: 'labs' })].join('---\n') });
    const proxy = h.proxy({ nodeId: 'gw-1', namespace: 'payers' });
    const first = await proxy.next();
    expect(first).toMatchObject({ fullSnapshot: true, current: false, baseVersion: '', removed: [], versionInfo: h.target('payers') });
    expect(first.versionInfo).toMatch(/^[0-9a-f]{16}$/);
    expect(ids(first.upserted)).toEqual(['acme', 'beta']);
    expect(first.upserted[0]?.source).toEqual({ namespace: 'payers', name: 'acme', generation: 1 });
  });

  it('tells a proxy that already runs the table in force that it is current, with that version', async () => {
    const h = await harness({ 'routes.yaml': routeYaml('acme') });
    const first = h.proxy({ nodeId: 'gw-1' });
    const full = await first.next();
    expect(first.apply(full)).toBeUndefined();
    first.ack(full);

    const resumed = h.proxy({ nodeId: 'gw-2', version: full.versionInfo, table: first.table });
    const answer = await resumed.next();
    expect(answer).toMatchObject({ current: true, fullSnapshot: false, versionInfo: full.versionInfo, baseVersion: '', upserted: [], removed: [] });
    resumed.ack(answer);
    await eventually(async () => {
      const status = await getProxyStatus(h.controller.grpcAddress);
      expect(status.proxies.map((p) => [p.identity?.nodeId, p.ackedVersion, p.syncState])).toEqual([
        ['gw-1', full.versionInfo, 'SYNCED'],
        ['gw-2', full.versionInfo, 'SYNCED'],
      ]);
    });
  });

  it('sends a full snapshot to a proxy holding a version that is not the one in force', async () => {
    const h = await harness({ 'routes.yaml': routeYaml('acme') });
    const proxy = h.proxy({ version: '0123456789abcdef' });
    const first = await proxy.next();
    expect(first).toMatchObject({ fullSnapshot: true, current: false, versionInfo: h.target('payers') });
    expect(ids(first.upserted)).toEqual(['acme']);
  });

  it('does not answer before the source has been read once', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const listeners: ((observedAtMs: number) => void)[] = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-ctl-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { parseRouteManifests } = await import('../../api/index.ts');
    const state: SourceState = { routes: parseRouteManifests(routeYaml('acme'), 'x').routes, refs: { file: () => undefined, secret: () => undefined, service: () => undefined } };
    const slowSource: RouteWatcher = {
      description: 'gated test source',
      start: () => gate,
      state: () => state,
      onChange: (listener) => listeners.push(listener),
      stop: () => Promise.resolve(),
    };
    const h = await harness({}, {}, slowSource);
    const proxy = h.proxy();
    expect(await proxy.staysQuiet(400)).toBe(true);
    expect((await fetch(`${h.controller.adminUrl}/readyz`)).status).toBe(503);
    expect((await getProxyStatus(h.controller.grpcAddress)).proxies).toEqual([]);

    release();
    const first = await proxy.next();
    expect(first.fullSnapshot).toBe(true);
    expect(ids(first.upserted)).toEqual(['acme']);
    expect((await fetch(`${h.controller.adminUrl}/readyz`)).status).toBe(200);
  });
});

describe('deltas', () => {
  it('sends only what changed, on top of the ACKed version, when routes change', async () => {
    const h = await harness({ 'routes.yaml': [routeYaml('acme'), routeYaml('beta'), routeYaml('gamma')].join('---\n') });
    const proxy = h.proxy();
    const full = await proxy.next();
    expect(proxy.apply(full)).toBeUndefined();
    proxy.ack(full);
    await eventually(async () => expect((await getProxyStatus(h.controller.grpcAddress)).proxies[0]?.syncState).toBe('SYNCED'));

    // One atomic edit: acme's backend changes, beta goes, delta arrives; gamma stays as it was.
    h.write('routes.yaml', [routeYaml('acme', { backend: 'https://acme-v2.example.org/fhir' }), routeYaml('delta'), routeYaml('gamma')].join('---\n'));
    const delta = await proxy.next();
    expect(delta).toMatchObject({ fullSnapshot: false, current: false, baseVersion: full.versionInfo, removed: ['beta'], versionInfo: h.target('payers') });
    expect(ids(delta.upserted)).toEqual(['acme', 'delta']);
    expect(delta.upserted[0]?.backend?.baseUrl).toBe('https://acme-v2.example.org/fhir');
    // The spec changed, so the route's generation did.
    expect(delta.upserted[0]?.source?.generation).toBe(2);
    expect(delta.upserted[1]?.source?.generation).toBe(1);
    expect(proxy.apply(delta)).toBeUndefined();
    expect([...proxy.table.keys()].sort()).toEqual(['acme', 'delta', 'gamma']);
  });

  it('holds one response in flight and coalesces the changes made meanwhile into the next', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy();
    const full = await proxy.next();
    proxy.apply(full);
    proxy.ack(full);

    h.write('b.yaml', routeYaml('beta'));
    const first = await proxy.next();
    expect(ids(first.upserted)).toEqual(['beta']);
    // Not answered yet: two more changes must wait, and then go out as one.
    h.write('c.yaml', routeYaml('gamma'));
    // In force before the next change, so the two are separate batches that the push must merge.
    await eventually(() => expect([...(h.controller.store.current?.snapshotFor('payers').entries.keys() ?? [])]).toContain('gamma'));
    h.remove('a.yaml');
    // Both changes are in the table in force, and still nothing was sent.
    await eventually(() => expect([...(h.controller.store.current?.snapshotFor('payers').entries.keys() ?? [])]).toEqual(['beta', 'gamma']));
    expect(await proxy.staysQuiet(200)).toBe(true);

    proxy.apply(first);
    proxy.ack(first);
    const coalesced = await proxy.next();
    expect(coalesced).toMatchObject({ fullSnapshot: false, baseVersion: first.versionInfo, removed: ['acme'], versionInfo: h.target('payers') });
    expect(ids(coalesced.upserted)).toEqual(['gamma']);
    expect(await proxy.staysQuiet(300)).toBe(true);
  });

  it('never sends an unchanged table: rewrites, reorders and changes out of scope send nothing', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme'), 'labs.yaml': routeYaml('labs-own', { namespace: 'labs' }) });
    const proxy = h.proxy();
    const full = await proxy.next();
    proxy.apply(full);
    proxy.ack(full);
    await eventually(async () => expect((await getProxyStatus(h.controller.grpcAddress)).proxies[0]?.syncState).toBe('SYNCED'));

    h.write('a.yaml', routeYaml('acme'));
    h.write('labs.yaml', routeYaml('labs-own', { namespace: 'labs', backend: 'https://labs-v2.example.org/fhir' }));
    h.write('notes.txt', 'not a routes file');
    expect(await proxy.staysQuiet(500)).toBe(true);
    expect(await h.counter('fhirmesh_controller_responses_total', '{kind="delta"}')).toBe(0);
  });

  it('keeps a proxy table equal to a fresh snapshot over a random sequence of changes', async () => {
    const random = mulberry32(20260211);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const destinations = ['acme', 'beta', 'gamma', 'delta', 'eps', 'zeta', 'eta', 'theta'];
    const exports: (string[] | undefined)[] = [undefined, ['*'], ['labs'], ['payers', 'labs'], ['elsewhere']];
    const spec = (): RouteOptions => ({
      namespace: pick(['payers', 'payers', 'labs']),
      destination: pick(destinations),
      backend: `https://b${Math.floor(random() * 4)}.example.org/fhir`,
      ...(random() < 0.6 ? { exportTo: pick(exports) ?? [] } : {}),
    });
    const files = new Map<string, string>();
    const h = await harness({});
    const payers = h.proxy({ nodeId: 'gw-payers', namespace: 'payers', mode: 'auto' });
    const labs = h.proxy({ nodeId: 'gw-labs', namespace: 'labs', mode: 'auto' });
    await payers.next();
    await labs.next();

    for (let step = 0; step < 30; step++) {
      const existing = [...files.keys()];
      const action = existing.length === 0 ? 'add' : pick(['add', 'add', 'modify', 'modify', 'remove']);
      if (action === 'add') {
        const file = `route-${step}.yaml`;
        const yaml = routeYaml(`r${step}`, spec());
        files.set(file, yaml);
        h.write(file, yaml);
      } else if (action === 'modify') {
        const file = pick(existing);
        const yaml = routeYaml(`r${file.replace(/\D/g, '')}`, spec());
        files.set(file, yaml);
        h.write(file, yaml);
      } else {
        const file = pick(existing);
        files.delete(file);
        h.remove(file);
      }
      // Sometimes quicker than a batch, sometimes slower: both coalesced and separate pushes.
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 120)));
    }

    for (const proxy of [payers, labs]) {
      await eventually(() => expect(proxy.version).toBe(h.target(proxy.namespace)), 5_000);
      expect(proxy.nacks).toEqual([]);
      const fresh = h.proxy({ nodeId: `fresh-${proxy.namespace}`, namespace: proxy.namespace });
      const snapshot = await fresh.next();
      expect(snapshot.fullSnapshot).toBe(true);
      expect(fresh.apply(snapshot)).toBeUndefined();
      expect(proxy.version).toBe(snapshot.versionInfo);
      expect(tableAsJson(proxy.table)).toEqual(tableAsJson(fresh.table));
    }
    expect(await h.counter('fhirmesh_controller_responses_total', '{kind="delta"}')).toBeGreaterThan(10);
  });
});

describe('NACK', () => {
  it('records a NACK for GetProxyStatus and route status, does not resend that version, and answers the next change with a full snapshot', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme'), 'b.yaml': routeYaml('beta') });
    const proxy = h.proxy({ nodeId: 'gw-1' });
    const full = await proxy.next();
    proxy.apply(full);
    proxy.ack(full);

    h.write('b.yaml', routeYaml('beta', { backend: 'https://beta-v2.example.org/fhir' }));
    const delta = await proxy.next();
    expect(delta.fullSnapshot).toBe(false);
    proxy.nack(delta, 'route beta: cannot load its CA');

    await eventually(async () => {
      const [status] = (await getProxyStatus(h.controller.grpcAddress)).proxies;
      expect(status).toMatchObject({
        ackedVersion: full.versionInfo,
        targetVersion: delta.versionInfo,
        nackedVersion: delta.versionInfo,
        nackMessage: 'route beta: cannot load its CA',
        syncState: 'NACKED',
      });
    });
    await eventually(() => {
      const statuses = h.controller.statuses;
      expect(statuses.desiredStatus('payers/beta')?.conditions?.find((c) => c.type === 'Programmed')).toMatchObject({
        status: 'False',
        reason: 'Nacked',
        message: `proxy gw-1 (payers) refused version ${delta.versionInfo}: route beta: cannot load its CA; 0 of 1 proxies in scope run generation 2`,
        observedGeneration: 2,
      });
      // acme did not change: the proxy still runs it.
      expect(statuses.desiredStatus('payers/acme')?.conditions?.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'True', reason: 'Programmed' });
    });
    // This fake proxy sends no reason code: counted as unspecified.
    expect(await h.counter('fhirmesh_controller_nacks_total', '{reason="unspecified"}')).toBe(1);
    // Polls rescan the directory; nothing changed, so the refused version is not sent again.
    expect(await proxy.staysQuiet(500)).toBe(true);

    h.write('a.yaml', routeYaml('acme', { backend: 'https://acme-v2.example.org/fhir' }));
    const next = await proxy.next();
    expect(next).toMatchObject({ fullSnapshot: true, baseVersion: '', versionInfo: h.target('payers') });
    expect(ids(next.upserted)).toEqual(['acme', 'beta']);
    proxy.apply(next);
    proxy.ack(next);
    await eventually(async () => {
      const [status] = (await getProxyStatus(h.controller.grpcAddress)).proxies;
      expect(status).toMatchObject({ ackedVersion: next.versionInfo, nackedVersion: '', nackMessage: '', syncState: 'SYNCED' });
    });
  });

  it('NACKs in auto mode a route the proxy cannot apply, and keeps its previous table', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy({ mode: 'auto', refuseRoute: (route) => (route.destinationId === 'bad' ? 'route bad: unsupported' : undefined) });
    await proxy.next();
    const good = proxy.version;
    h.write('b.yaml', routeYaml('bad'));
    await proxy.next();
    await eventually(async () => expect((await getProxyStatus(h.controller.grpcAddress)).proxies[0]?.syncState).toBe('NACKED'));
    expect(proxy.version).toBe(good);
    expect([...proxy.table.keys()]).toEqual(['acme']);
  });
});

describe('scope', () => {
  it('serves each namespace only the routes exported to it', async () => {
    const h = await harness({
      'routes.yaml': [
        routeYaml('own-only'),
        routeYaml('to-labs', { exportTo: ['labs'] }),
        routeYaml('to-all', { exportTo: ['*'] }),
        routeYaml('labs-own', { namespace: 'labs' }),
      ].join('---\n'),
    });
    const seen: Record<string, string[]> = {};
    for (const namespace of ['payers', 'labs', 'elsewhere']) {
      const proxy = h.proxy({ nodeId: `gw-${namespace}`, namespace });
      seen[namespace] = ids((await proxy.next()).upserted);
    }
    expect(seen).toEqual({ payers: ['own-only', 'to-all'], labs: ['labs-own', 'to-all', 'to-labs'], elsewhere: ['to-all'] });
  });

  it('sends a route to a namespace when exportTo starts naming it, and removes it when it stops', async () => {
    const h = await harness({ 'r.yaml': routeYaml('acme') });
    const labs = h.proxy({ namespace: 'labs', mode: 'auto' });
    expect(ids((await labs.next()).upserted)).toEqual([]);
    h.write('r.yaml', routeYaml('acme', { exportTo: ['payers', 'labs'] }));
    const added = await labs.next();
    expect(ids(added.upserted)).toEqual(['acme']);
    h.write('r.yaml', routeYaml('acme'));
    const removed = await labs.next();
    expect(removed).toMatchObject({ upserted: [], removed: ['acme'], baseVersion: added.versionInfo });
  });
});

describe('slow consumers and misbehaving proxies', () => {
  it('closes the stream of a proxy that never answers with RESOURCE_EXHAUSTED, counts it, and resyncs it with a full snapshot', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') }, { ackTimeoutMs: 300 });
    const silent = h.proxy({ nodeId: 'gw-slow' });
    await silent.next();
    const sentAt = Date.now();
    const end = await silent.ended;
    const waited = Date.now() - sentAt;
    expect(end.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(end.details).toMatch(/^no ACK or NACK for version [0-9a-f]{16} \(nonce 1\) within 300 ms/);
    expect(waited).toBeGreaterThanOrEqual(200);
    expect(waited).toBeLessThan(1_500);
    expect(await h.counter('fhirmesh_controller_slow_consumer_disconnects_total')).toBe(1);
    expect((await getProxyStatus(h.controller.grpcAddress)).proxies).toEqual([]);

    const again = h.proxy({ nodeId: 'gw-slow' });
    const resync = await again.next();
    expect(resync.fullSnapshot).toBe(true);
    expect(ids(resync.upserted)).toEqual(['acme']);
  });

  it.each([
    ['no identity', null, /first DiscoveryRequest must carry identity/],
    ['a namespace that is not a DNS label', { nodeId: 'gw-1', namespace: 'Payers_NS' }, /identity\.namespace 'Payers_NS' must be a namespace name/],
    ['an empty node id', { nodeId: '', namespace: 'payers' }, /identity\.node_id '' must be/],
  ])('refuses a first message with %s with INVALID_ARGUMENT', async (_what, identity, message) => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy({ identity });
    const end = await proxy.ended;
    expect(end.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(end.details).toMatch(message);
    expect(proxy.responses).toEqual([]);
  });

  it('closes with INVALID_ARGUMENT an ACK that names another version than the response carried', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy();
    const full = await proxy.next();
    proxy.send({ versionInfo: 'ffffffffffffffff', responseNonce: full.nonce });
    const end = await proxy.ended;
    expect(end.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(end.details).toMatch(/names version 'ffffffffffffffff' but that response carried/);
  });

  it('ignores an answer with a stale nonce', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy();
    const full = await proxy.next();
    proxy.send({ versionInfo: full.versionInfo, responseNonce: 'not-a-nonce' });
    proxy.ack(full);
    await eventually(async () => expect((await getProxyStatus(h.controller.grpcAddress)).proxies[0]?.syncState).toBe('SYNCED'));
  });

  it('replaces the older stream of a proxy that reconnects with the same node id (ABORTED)', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const older = h.proxy({ nodeId: 'gw-1' });
    await older.next();
    const newer = h.proxy({ nodeId: 'gw-1' });
    await newer.next();
    expect((await older.ended).code).toBe(grpc.status.ABORTED);
    expect((await getProxyStatus(h.controller.grpcAddress)).proxies).toHaveLength(1);
  });

  it('closes streams with UNAVAILABLE when the controller shuts down', async () => {
    const h = await harness({ 'a.yaml': routeYaml('acme') });
    const proxy = h.proxy();
    await proxy.next();
    await h.controller.shutdown();
    const end = await proxy.ended;
    expect(end.code).toBe(grpc.status.UNAVAILABLE);
    expect(end.details).toMatch(/shutting down/);
  });
});

/** A small seeded RNG (mulberry32): the same sequence of changes on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
