// Pins what a ProxyStream does while its response waits for the send pacer: the ACK deadline has not
// started, an answer cannot match it, and when it is written it carries the table in force by then.

import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { DISCOVERY_PROTO_PATH, withNonce, type DiscoveryResponse__Output } from '../../../api/discovery/index.ts';
import type { FhirRoute } from '../../../api/index.ts';
import { ProxyRegistry, SnapshotStore } from '../../../controller/src/discovery/index.ts';
import { ProxyStream } from '../../../controller/src/discovery/proxy-stream.ts';
import { ResponseCache, type SharedResponse } from '../../../controller/src/discovery/response-cache.ts';
import { NO_TRACING } from '../../../controller/src/telemetry/change-tracer.ts';
import { ControllerMetrics } from '../../../controller/src/telemetry/metrics.ts';
import { silentLogger } from '../../../runtime/index.ts';
import { eventually } from '../../support/eventually.ts';
import { ManualSource } from '../../support/manual-source.ts';
import { refsOf, route } from '../api/route-fixtures.ts';

const r = (name: string): FhirRoute => route({ destination: name, backend: { url: `https://${name}.example.org/fhir` } }, { name, namespace: 'payers', generation: 1 });

interface Queued {
  response: () => SharedResponse;
  nonce: string;
  handedOver: () => void;
}

const decode = (() => {
  const type = protobuf.loadSync(DISCOVERY_PROTO_PATH).lookupType('fhirmesh.v1.DiscoveryResponse');
  return (bytes: Buffer): DiscoveryResponse__Output => type.toObject(type.decode(bytes), { defaults: true }) as DiscoveryResponse__Output;
})();

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

async function stream(ackTimeoutMs = 200): Promise<{ source: ManualSource; store: SnapshotStore; registry: ProxyRegistry; stream: ProxyStream; queued: Queued[]; failed: unknown[] }> {
  const source = new ManualSource({ routes: [r('acme')], refs: refsOf() });
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const store = new SnapshotStore({ source, batchWindowMs: 5, logger: silentLogger(), metrics });
  await store.start();
  stops.push(() => store.stop());
  const registry = new ProxyRegistry();
  const queued: Queued[] = [];
  const failed: unknown[] = [];
  const proxyStream = new ProxyStream({
    streamId: 1,
    transport: { send: (response, nonce, handedOver) => queued.push({ response, nonce, handedOver }), fail: (error) => failed.push(error) },
    store,
    responses: new ResponseCache(),
    registry,
    authenticate: () => Promise.resolve({}),
    ackTimeoutMs,
    metrics,
    logger: silentLogger(),
    tracer: NO_TRACING,
  });
  stops.push(() => proxyStream.ended());
  proxyStream.receive({ identity: { nodeId: 'gw-1', namespace: 'payers', labels: {}, proxyVersion: 'test' }, versionInfo: '', responseNonce: '', errorDetail: null });
  await eventually(() => expect(queued).toHaveLength(1));
  return { source, store, registry, stream: proxyStream, queued, failed };
}

describe('a response waiting for the pacer', () => {
  it('has no deadline running and cannot be answered until it is written', async () => {
    const s = await stream(100);
    const [first] = s.queued;
    if (first === undefined) throw new Error('nothing queued');
    const version = s.store.current?.snapshotFor('payers').version ?? '';
    // Longer than the deadline: still queued, so not a slow consumer.
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(s.failed).toEqual([]);
    // An answer guessing the nonce before anything was written is stale.
    s.stream.receive({ identity: null, versionInfo: version, responseNonce: first.nonce, errorDetail: null });
    expect(s.registry.list()[0]?.ackedVersion).toBe('');

    first.handedOver();
    s.stream.receive({ identity: null, versionInfo: version, responseNonce: first.nonce, errorDetail: null });
    expect(s.registry.list()[0]?.ackedVersion).toBe(version);
  });

  it('closes the stream once the deadline passes after the response was written', async () => {
    const s = await stream(100);
    s.queued[0]?.handedOver();
    await eventually(() => expect(s.failed).toHaveLength(1));
    expect(String(s.failed[0])).toMatch(/no ACK or NACK .* within 100 ms/);
  });

  it('carries the table in force when it is written, not the one in force when it was queued', async () => {
    const s = await stream();
    const [first] = s.queued;
    if (first === undefined) throw new Error('nothing queued');
    const queuedVersion = first.response().version;
    s.source.set([r('acme'), r('beta')]);
    await eventually(() => expect(s.store.current?.snapshotFor('payers').version).not.toBe(queuedVersion));
    const written = decode(withNonce(first.response().bytes, first.nonce));
    first.handedOver();
    expect(written).toMatchObject({ fullSnapshot: true, nonce: '1', versionInfo: s.store.current?.snapshotFor('payers').version });
    expect(written.upserted.map((u) => u.destinationId)).toEqual(['acme', 'beta']);
    // Once written it is what it is: a later change waits for the ACK (one response in flight).
    s.source.set([r('acme')]);
    await eventually(() => expect(s.store.current?.snapshotFor('payers').version).toBe(queuedVersion));
    expect(first.response().version).toBe(written.versionInfo);
    s.stream.receive({ identity: null, versionInfo: written.versionInfo, responseNonce: '1', errorDetail: null });
    await eventually(() => expect(s.queued).toHaveLength(2));
    const delta = decode(withNonce(s.queued[1]?.response().bytes ?? Buffer.alloc(0), '2'));
    expect(delta).toMatchObject({ fullSnapshot: false, baseVersion: written.versionInfo, versionInfo: queuedVersion, removed: ['beta'], nonce: '2' });
  });
});
