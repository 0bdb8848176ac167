// Pins how the discovery server sends at scale: one encoding per table (or per base and table) shared
// by every stream in scope, each stream's own nonce on it, and a reconnect wave served in order
// without a deadline miss when the wave lasts longer than the ACK deadline. Real gRPC on 127.0.0.1:0.

import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeSharedResponse, withNonce, DISCOVERY_PROTO_PATH, type DiscoveryResponse__Output } from '../../api/discovery/index.ts';
import { parseRouteManifests, type FhirRoute } from '../../api/index.ts';
import { DiscoveryServer, ProxyRegistry, SnapshotStore, trustIdentityClaims } from '../../controller/src/discovery/index.ts';
import type { SendPacerOptions } from '../../controller/src/discovery/send-pacer.ts';
import { ControllerMetrics } from '../../controller/src/telemetry/metrics.ts';
import { silentLogger } from '../../runtime/index.ts';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, type FakeProxy, type FakeProxyOptions } from '../support/fake-proxy.ts';
import { ManualSource } from '../support/manual-source.ts';

function routeYaml(name: string, namespace: string, backend = `https://${name}.example.org/fhir`): string {
  return [
    'apiVersion: fhirmesh.io/v1alpha1',
    'kind: FhirRoute',
    `metadata: { name: ${name}, namespace: ${namespace} }`,
    'spec:',
    `  destination: ${name}`,
    `  addressing: { header: true, hosts: [${name}.${namespace}.example.org] }`,
    `  backend: { url: ${backend} }`,
    '  rules:',
    '    - { name: lab-orders, match: { resourceTypes: [ServiceRequest], interactions: [create] }, backend: { url: https://labs.example.org/fhir } }',
  ].join('\n');
}

function routes(perNamespace: Record<string, number>, backend?: (name: string) => string): FhirRoute[] {
  const docs: string[] = [];
  for (const [namespace, count] of Object.entries(perNamespace)) {
    for (let i = 0; i < count; i++) docs.push(routeYaml(`${namespace}-r${i}`, namespace, backend?.(`${namespace}-r${i}`)));
  }
  return parseRouteManifests(docs.join('\n---\n'), 'test').routes;
}

interface Harness {
  server: DiscoveryServer;
  source: ManualSource;
  store: SnapshotStore;
  metrics: ControllerMetrics;
  address: string;
  proxy(options?: Partial<FakeProxyOptions>): FakeProxy;
  counter(name: string, labels?: string): Promise<number>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function harness(initial: readonly FhirRoute[], options: { ackTimeoutMs?: number; pacing?: SendPacerOptions } = {}): Promise<Harness> {
  const source = new ManualSource(initial);
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const logger = silentLogger();
  const store = new SnapshotStore({ source, batchWindowMs: 10, logger, metrics });
  await store.start();
  cleanups.push(() => store.stop());
  const server = new DiscoveryServer({
    store,
    registry: new ProxyRegistry(),
    authenticate: trustIdentityClaims,
    ackTimeoutMs: options.ackTimeoutMs ?? 5_000,
    controllerId: 'ctl-test',
    metrics,
    logger,
    ...(options.pacing === undefined ? {} : { pacing: options.pacing }),
  });
  const bound = await server.listen('127.0.0.1', 0);
  cleanups.push(() => server.shutdown(0));
  const address = `127.0.0.1:${bound.port}`;
  return {
    server,
    source,
    store,
    metrics,
    address,
    proxy(proxyOptions = {}) {
      const proxy = connectFakeProxy({ address, ...proxyOptions });
      cleanups.push(() => proxy.close());
      return proxy;
    },
    async counter(name, labels = '') {
      const text = await metrics.registry.metrics();
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return m === null ? 0 : Number(m[1]);
    },
  };
}

const target = (h: Harness, namespace: string): string => {
  const translation = h.store.current;
  if (translation === undefined) throw new Error('not read yet');
  return translation.snapshotFor(namespace).version;
};

describe('one encoding per table', () => {
  it('serialises a namespace’s full snapshot once for all its streams, and each delta once per base version', async () => {
    const h = await harness(routes({ payers: 30, labs: 10 }));
    const payers = Array.from({ length: 12 }, (_, i) => h.proxy({ nodeId: `gw-p${i}`, namespace: 'payers', mode: 'auto' }));
    const labs = Array.from({ length: 5 }, (_, i) => h.proxy({ nodeId: `gw-l${i}`, namespace: 'labs', mode: 'auto' }));
    for (const proxy of [...payers, ...labs]) await proxy.waitForVersion(target(h, proxy.namespace));
    expect(h.server.encodedResponses).toBe(2);
    for (const proxy of payers) expect(proxy.responses[0]).toMatchObject({ fullSnapshot: true, nonce: '1' });
    expect(payers[0]?.responses[0]?.upserted).toHaveLength(30);

    // One payers route changes: one delta encoded for the twelve payers streams, nothing for labs.
    const before = target(h, 'payers');
    h.source.set(routes({ payers: 30, labs: 10 }, (name) => (name === 'payers-r3' ? 'https://v2.example.org/fhir' : `https://${name}.example.org/fhir`)));
    await eventually(() => expect(target(h, 'payers')).not.toBe(before));
    for (const proxy of payers) await proxy.waitForVersion(target(h, 'payers'));
    expect(h.server.encodedResponses).toBe(3);
    for (const proxy of payers) {
      expect(proxy.responses[1]).toMatchObject({ fullSnapshot: false, nonce: '2', removed: [] });
      expect(proxy.responses[1]?.upserted.map((r) => r.destinationId)).toEqual(['payers-r3']);
      expect(proxy.nacks).toEqual([]);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const proxy of labs) expect(proxy.responses).toHaveLength(1);

    // A proxy that reconnects at the version in force is told `current`; a second one shares that too.
    const resumed = [0, 1].map((i) => h.proxy({ nodeId: `gw-r${i}`, namespace: 'payers', version: target(h, 'payers'), table: payers[0]?.table ?? new Map() }));
    for (const proxy of resumed) expect(await proxy.next()).toMatchObject({ current: true, versionInfo: target(h, 'payers') });
    expect(h.server.encodedResponses).toBe(4);
  });

  it('gives each response its stream’s own nonce and matches answers by it', async () => {
    const h = await harness(routes({ payers: 3 }));
    const a = h.proxy({ nodeId: 'gw-a' });
    const b = h.proxy({ nodeId: 'gw-b' });
    const firstA = await a.next();
    const firstB = await b.next();
    expect([firstA.nonce, firstB.nonce]).toEqual(['1', '1']);
    a.apply(firstA);
    a.ack(firstA);
    b.apply(firstB);
    b.ack(firstB);
    await eventually(async () => expect(await h.counter('fhirmesh_controller_push_duration_seconds_count', '{kind="full",result="ack"}')).toBe(2));

    h.source.set(routes({ payers: 4 }));
    const deltaA = await a.next();
    const deltaB = await b.next();
    expect(deltaA).toMatchObject({ nonce: '2', baseVersion: firstA.versionInfo });
    expect(deltaB).toEqual(deltaA);
    // An answer naming the previous nonce is stale: the delta stays in flight until its own nonce comes.
    a.send({ versionInfo: deltaA.versionInfo, responseNonce: firstA.nonce });
    expect(await a.staysQuiet(200)).toBe(true);
    h.source.set(routes({ payers: 5 }));
    expect(await a.staysQuiet(200)).toBe(true);
    a.apply(deltaA);
    a.ack(deltaA);
    const next = await a.next();
    expect(next).toMatchObject({ nonce: '3', baseVersion: deltaA.versionInfo, versionInfo: target(h, 'payers') });
  });

  it('writes bytes that decode to exactly the response, whatever the nonce’s length', () => {
    const root = protobuf.loadSync(DISCOVERY_PROTO_PATH);
    const type = root.lookupType('fhirmesh.v1.DiscoveryResponse');
    const response = { versionInfo: '0123456789abcdef', fullSnapshot: false, current: false, baseVersion: 'fedcba9876543210', upserted: [], removed: ['gone'] };
    const shared = encodeSharedResponse(response);
    const before = Buffer.from(shared);
    for (const nonce of ['1', '42', 'n'.repeat(127), 'n'.repeat(128), 'é'.repeat(300)]) {
      const decoded = type.toObject(type.decode(withNonce(shared, nonce)), { defaults: true });
      expect(decoded).toEqual({ ...response, nonce });
    }
    // Shared by every stream: appending a nonce never writes into it.
    expect(shared.equals(before)).toBe(true);
    expect(type.toObject(type.decode(shared), { defaults: true }).nonce).toBe('');
  });
});

describe('a reconnect wave', () => {
  const pacing = { bytesPerTurn: 192 * 1024, bytesInTransit: 192 * 1024 };
  const table = (): readonly FhirRoute[] => routes({ payers: 300, labs: 300 });

  /** Opens `count` streams at once and resolves with when each got its first table (ms from the start). */
  async function wave(h: Harness, count: number, prefix: string): Promise<{ proxies: FakeProxy[]; firstAt: Map<FakeProxy, number> }> {
    const started = performance.now();
    const proxies = Array.from({ length: count }, (_, i) => h.proxy({ nodeId: `${prefix}-${i}`, namespace: i % 2 === 0 ? 'payers' : 'labs', mode: 'auto' }));
    const firstAt = new Map<FakeProxy, number>();
    await Promise.all(
      proxies.map(async (proxy) => {
        const first: DiscoveryResponse__Output = await proxy.next(120_000);
        firstAt.set(proxy, performance.now() - started);
        expect(first.fullSnapshot).toBe(true);
      }),
    );
    return { proxies, firstAt };
  }
  const spreadOf = (firstAt: Map<FakeProxy, number>): number => {
    const times = [...firstAt.values()].sort((x, y) => x - y);
    return (times.at(-1) ?? 0) - (times[0] ?? 0);
  };

  it('serves every proxy of a wave longer than the ACK deadline, in order, and drops none', async () => {
    // 1,000 proxies × a 300-route table (about 90 KB) through at most 192 KiB not yet flushed (two
    // tables): the wave lasts hundreds of times what one response takes to be answered. How long it
    // lasts depends on the machine (about 3 s quiet, 20-70 s at load 14), so the deadline is set
    // from a calibration wave of 300 on the same machine: a third of the full wave's predicted
    // length. Each response, paced, is answered well within that; the wave as a whole outlasts it.
    const proxies = 1_000;
    const mark = cleanups.length;
    const calibration = await harness(table(), { ackTimeoutMs: 120_000, pacing });
    const predictedMs = (spreadOf((await wave(calibration, 300, 'cal')).firstAt) * proxies) / 300;
    for (const cleanup of cleanups.splice(mark).reverse()) await cleanup();
    const ackTimeoutMs = Math.round(Math.min(30_000, Math.max(500, predictedMs / 3)));

    const h = await harness(table(), { ackTimeoutMs, pacing });
    const { proxies: streams, firstAt } = await wave(h, proxies, 'gw');
    await eventually(async () => expect(await h.counter('fhirmesh_controller_push_duration_seconds_count', '{kind="full",result="ack"}')).toBe(proxies), 30_000);
    expect(await h.counter('fhirmesh_controller_slow_consumer_disconnects_total')).toBe(0);
    expect(h.server.encodedResponses).toBe(2);
    for (const proxy of streams) expect(proxy.nacks).toEqual([]);
    const ended = await Promise.race([Promise.any(streams.map((proxy) => proxy.ended)), new Promise((resolve) => setTimeout(() => resolve('none'), 200))]);
    expect(ended).toBe('none');
    // In order: the streams opened first (one HTTP/2 connection, so in this order) were served first.
    const median = (slice: FakeProxy[]): number => slice.map((proxy) => firstAt.get(proxy) ?? Infinity).sort((x, y) => x - y)[Math.floor(slice.length / 2)] ?? Infinity;
    expect(median(streams.slice(0, proxies / 4))).toBeLessThan(median(streams.slice(-proxies / 4)));
    // What makes the test mean something: had every deadline started at once, the last would have missed it.
    expect(spreadOf(firstAt), `deadline ${ackTimeoutMs} ms from a predicted ${Math.round(predictedMs)} ms wave`).toBeGreaterThan(ackTimeoutMs);
  }, 240_000);
});
