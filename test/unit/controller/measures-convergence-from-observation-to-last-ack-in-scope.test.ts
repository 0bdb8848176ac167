// Pins what fhirmesh_controller_convergence_seconds measures: from when the source observed a change
// (the event, before its read and the batch window) to the last answer of a proxy in its scope (the
// namespaces whose table changed); proxies out of scope, gone, or NACKing do not hold it up.

import { describe, expect, it } from 'vitest';
import { translate, type Translation } from '../../../controller/src/compile/index.ts';
import { ProxyRecord, ProxyRegistry } from '../../../controller/src/discovery/proxy-registry.ts';
import { ConvergenceTracker } from '../../../controller/src/discovery/convergence-tracker.ts';
import { SnapshotStore } from '../../../controller/src/discovery/snapshot-store.ts';
import type { SourceState } from '../../../controller/src/sources/index.ts';
import { ControllerMetrics } from '../../../controller/src/telemetry/metrics.ts';
import type { FhirRoute } from '../../../api/index.ts';
import { createLogger } from '../../../runtime/index.ts';
import { refsOf, route } from '../api/route-fixtures.ts';
import { ManualSource } from '../../support/manual-source.ts';

const payers = route({ destination: 'payers-api' }, { name: 'payers-api', namespace: 'payers', generation: 1 });
const labs = route({ destination: 'labs-api' }, { name: 'labs-api', namespace: 'labs', generation: 1 });
const labsV2 = route({ destination: 'labs-api', backend: { url: 'https://labs-v2.example.org/fhir' } }, { name: 'labs-api', namespace: 'labs', generation: 2 });

function stateOf(...routes: FhirRoute[]): SourceState {
  return { routes, refs: refsOf() };
}

/** A clock the test moves. */
function clock(startMs = 1_000): { nowMs: () => number; set: (ms: number) => void } {
  let now = startMs;
  return { nowMs: () => now, set: (ms) => (now = ms) };
}

async function histogram(metrics: ControllerMetrics, name: string): Promise<{ count: number; sum: number }> {
  const text = await metrics.registry.metrics();
  const value = (suffix: string): number => Number(new RegExp(`^${name}_${suffix} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { count: value('count'), sum: value('sum') };
}

let streamIds = 0;
function connect(registry: ProxyRegistry, namespace: string): ProxyRecord {
  const record = new ProxyRecord({
    streamId: ++streamIds,
    identity: { nodeId: `proxy-${streamIds}`, namespace, labels: {}, proxyVersion: 'test' },
    namespace,
    connectedAt: new Date(),
    disconnect: () => undefined,
  });
  registry.add(record, () => undefined);
  return record;
}

function tracker(registry: ProxyRegistry, current: () => Translation, nowMs: () => number): { convergence: ConvergenceTracker; metrics: ControllerMetrics } {
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const convergence = new ConvergenceTracker({ translation: current, proxies: () => registry.list(), connected: (proxy) => registry.has(proxy), metrics, nowMs });
  registry.onChange(() => convergence.check());
  return { convergence, metrics };
}

describe('ConvergenceTracker', () => {
  it('counts from the observation to the last ACK of a proxy whose namespace table changed, not waiting for others', async () => {
    const time = clock();
    const registry = new ProxyRegistry();
    const before = translate(stateOf(payers, labs), 1);
    let current = before;
    const { convergence, metrics } = tracker(registry, () => current, time.nowMs);
    const [labsA, labsB, payersProxy] = [connect(registry, 'labs'), connect(registry, 'labs'), connect(registry, 'payers')];
    for (const proxy of [labsA, labsB, payersProxy]) proxy.acknowledged(before.snapshotFor(proxy.namespace));

    current = translate(stateOf(payers, labsV2), 2);
    expect(current.snapshotFor('payers').version).toBe(before.snapshotFor('payers').version);
    time.set(1_150);
    convergence.translated(current, 1_000, before);
    expect(convergence.outstanding).toBe(2);

    time.set(1_200);
    labsA.acknowledged(current.snapshotFor('labs'));
    registry.changed();
    expect((await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).count).toBe(0);

    // The payers proxy never answers anything: its table did not change, so it is not waited for.
    time.set(1_420);
    labsB.acknowledged(current.snapshotFor('labs'));
    registry.changed();
    expect(await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).toEqual({ count: 1, sum: 0.42 });
    expect(convergence.outstanding).toBe(0);
  });

  it('takes a NACK of the target as an answer, and a proxy that went away as nothing to wait for', async () => {
    const time = clock();
    const registry = new ProxyRegistry();
    const before = translate(stateOf(labs), 1);
    let current = before;
    const { convergence, metrics } = tracker(registry, () => current, time.nowMs);
    const [refusing, leaving] = [connect(registry, 'labs'), connect(registry, 'labs')];
    current = translate(stateOf(labsV2), 2);
    convergence.translated(current, 1_000, before);

    time.set(1_100);
    refusing.refused({ version: current.snapshotFor('labs').version, message: 'no', table: current.snapshotFor('labs'), at: new Date() });
    registry.changed();
    expect((await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).count).toBe(0);
    time.set(1_300);
    registry.remove(leaving);
    expect(await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).toEqual({ count: 1, sum: 0.3 });
  });

  it('observes nothing for a change no connected proxy is in the scope of', async () => {
    const registry = new ProxyRegistry();
    const before = translate(stateOf(payers, labs), 1);
    const current = translate(stateOf(payers, labsV2), 2);
    const { convergence, metrics } = tracker(registry, () => current, clock().nowMs);
    connect(registry, 'payers').acknowledged(before.snapshotFor('payers'));
    convergence.translated(current, 1_000, before);
    expect((await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).count).toBe(0);
    expect(convergence.outstanding).toBe(0);
  });

  it('counts a change that lands before convergence from the first one, adding its scope', async () => {
    const time = clock();
    const registry = new ProxyRegistry();
    const first = translate(stateOf(payers, labs), 1);
    let current = first;
    const { convergence, metrics } = tracker(registry, () => current, time.nowMs);
    const [labsProxy, payersProxy] = [connect(registry, 'labs'), connect(registry, 'payers')];
    for (const proxy of [labsProxy, payersProxy]) proxy.acknowledged(first.snapshotFor(proxy.namespace));

    current = translate(stateOf(payers, labsV2), 2);
    convergence.translated(current, 1_000, first);
    const payersV2 = route({ destination: 'payers-api', backend: { url: 'https://payers-v2.example.org/fhir' } }, { name: 'payers-api', namespace: 'payers', generation: 2 });
    const second = current;
    current = translate(stateOf(payersV2, labsV2), 3);
    convergence.translated(current, 1_050, second);
    time.set(1_200);
    labsProxy.acknowledged(current.snapshotFor('labs'));
    registry.changed();
    expect((await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).count).toBe(0);
    time.set(1_500);
    payersProxy.acknowledged(current.snapshotFor('payers'));
    registry.changed();
    expect(await histogram(metrics, 'fhirmesh_controller_convergence_seconds')).toEqual({ count: 1, sum: 0.5 });
  });

  it('looks at each proxy once per episode, not at every proxy on every answer', () => {
    const registry = new ProxyRegistry();
    const before = translate(stateOf(labs), 1);
    let current = before;
    const looked = { count: 0 };
    const metrics = new ControllerMetrics({ defaultMetrics: false });
    const convergence = new ConvergenceTracker({
      translation: () => current,
      proxies: () => registry.list(),
      connected: (proxy) => {
        looked.count++;
        return registry.has(proxy);
      },
      metrics,
      nowMs: clock().nowMs,
    });
    const proxies = Array.from({ length: 1_000 }, () => connect(registry, 'labs'));
    current = translate(stateOf(labsV2), 2);
    convergence.translated(current, 1_000, before);
    for (const proxy of proxies) {
      proxy.acknowledged(current.snapshotFor('labs'));
      convergence.check();
    }
    expect(convergence.outstanding).toBe(0);
    // One look per proxy dropped, plus one at the head for each answer that did not finish it.
    expect(looked.count).toBeLessThanOrEqual(2 * proxies.length + 1);
  });
});

describe('SnapshotStore change timing', () => {
  it('passes on the earliest observation of a batch, with the translation it replaces, and times observation → tables', async () => {
    const time = clock(5_000);
    const source = new ManualSource(stateOf(labs));
    const metrics = new ControllerMetrics({ defaultMetrics: false });
    const store = new SnapshotStore({ source, batchWindowMs: 30, logger: createLogger({ component: 'test', write: () => undefined }), metrics, nowMs: time.nowMs });
    await store.start();
    const first = store.current;
    const told: { changeSeenAtMs: number | undefined; previous: Translation | undefined; translation: Translation }[] = [];
    store.subscribe((translation, changeSeenAtMs, previous) => told.push({ translation, changeSeenAtMs, previous }));

    // Told late (after the source's read), and out of order: the earliest observation counts.
    source.observed(stateOf(labsV2), 4_990);
    source.observed(stateOf(labsV2, payers), 4_980);
    time.set(5_040);
    await expect.poll(() => told.length).toBe(1);
    expect(told[0]?.changeSeenAtMs).toBe(4_980);
    expect(told[0]?.previous).toBe(first);
    expect(told[0]?.translation.routes).toHaveLength(2);
    expect(await histogram(metrics, 'fhirmesh_controller_change_to_table_seconds')).toEqual({ count: 1, sum: 0.06 });
    store.stop();
  });
});
