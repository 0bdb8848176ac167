// Calls the Kubernetes status writer's reconcile directly against a recording fake of the status
// subresource and pins the exact PATCH bodies: written once, with the cached resourceVersion, only
// by the leader, never for a stale computation; 404 drops, 409/5xx retry, other 4xx are terminal.

import { describe, expect, it } from 'vitest';
import type { Condition, FhirRoute, FhirRouteStatus } from '../../../../api/index.ts';
import { silentLogger } from '../../../../controller/src/index.ts';
import { KubeApiError, RouteStatusWriter, WorkQueue, type StatusPatch, type StatusPatcher } from '../../../../controller/src/kubernetes/index.ts';
import { route } from '../../api/route-fixtures.ts';

const T0 = '2026-03-01T00:00:00Z';
const T1 = '2026-03-01T00:05:00Z';

function condition(type: Condition['type'], ok: boolean, reason: string, generation: number, at: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message: `${type} ${reason}`, observedGeneration: generation, lastTransitionTime: at };
}

function status(generation: number, programmed: boolean, at = T1): FhirRouteStatus {
  return {
    observedGeneration: generation,
    conditions: [
      condition('Accepted', true, 'Accepted', generation, at),
      condition('ResolvedRefs', true, 'ResolvedRefs', generation, at),
      condition('Programmed', programmed, programmed ? 'Programmed' : 'NoProxies', generation, at),
    ],
    proxies: { total: programmed ? 1 : 0, programmed: programmed ? 1 : 0 },
  };
}

interface Recorded {
  namespace: string;
  name: string;
  patch: StatusPatch;
}

/** A status subresource that records each PATCH and answers what the test says next. */
class RecordingPatcher implements StatusPatcher {
  readonly calls: Recorded[] = [];
  answers: number[] = [];

  patchStatus(namespace: string, name: string, patch: StatusPatch): Promise<{ status: number; body: unknown }> {
    this.calls.push({ namespace, name, patch: structuredClone(patch) });
    const status = this.answers.shift() ?? 200;
    return Promise.resolve({ status, body: status === 200 ? {} : { kind: 'Status', reason: status === 409 ? 'Conflict' : 'Failure', message: `answered ${status}` } });
  }
}

function world(options: { leader?: boolean } = {}) {
  const cache = new Map<string, { route: FhirRoute; resourceVersion: string }>();
  const patcher = new RecordingPatcher();
  const leader = { leading: options.leader ?? true, isLeader: () => leader.leading };
  const queue = new WorkQueue();
  const writer = new RouteStatusWriter({
    patcher,
    routes: {
      get: (key) => cache.get(key)?.route,
      resourceVersionOf: (key) => cache.get(key)?.resourceVersion,
      keys: () => [...cache.keys()],
    },
    queue,
    leader,
    logger: silentLogger(),
  });
  const put = (resourceVersion: string, generation: number, current?: FhirRouteStatus): void => {
    const object = route({ destination: 'acme' }, { name: 'acme', namespace: 'payers', generation, uid: 'uid-1', resourceVersion });
    cache.set('payers/acme', { route: current === undefined ? object : { ...object, status: current }, resourceVersion });
  };
  return { cache, patcher, leader, queue, writer, put };
}

describe('RouteStatusWriter.reconcile', () => {
  it('PATCHes the published status with the cached resourceVersion, then nothing once the cache has it', async () => {
    const w = world();
    w.put('100', 1);
    w.writer.publish('payers/acme', status(1, false));
    expect(w.queue.depth).toBe(1);

    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls).toEqual([{ namespace: 'payers', name: 'acme', patch: { metadata: { resourceVersion: '100' }, status: status(1, false) } }]);

    // Until the watch delivers the write, the cache holds the old object: no second PATCH.
    expect(await w.writer.reconcile('payers/acme')).toBe('awaiting-own-write');
    w.put('101', 1, status(1, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('in-sync');
    expect(w.patcher.calls).toHaveLength(1);
  });

  it('keeps the lastTransitionTime of conditions whose status does not change', async () => {
    const w = world();
    w.put('100', 1, status(1, false, T0));
    // The computation stamped every condition T1; only Programmed changes status.
    w.writer.publish('payers/acme', status(1, true, T1));
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    const written = w.patcher.calls[0]?.patch.status.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime]);
    expect(written).toEqual([
      ['Accepted', 'True', T0],
      ['ResolvedRefs', 'True', T0],
      ['Programmed', 'True', T1],
    ]);
  });

  it('writes nothing for a status computed for another generation than the cached object', async () => {
    const w = world();
    w.put('200', 2, status(1, true));
    w.writer.publish('payers/acme', status(1, true));
    expect(await w.writer.reconcile('payers/acme')).toBe('stale-desired');
    w.writer.publish('payers/acme', status(2, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls.map((c) => c.patch.status.observedGeneration)).toEqual([2]);
  });

  it('writes only while leading; leadership gained finds every route again', async () => {
    const w = world({ leader: false });
    w.put('100', 1);
    w.writer.publish('payers/acme', status(1, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('not-leader');
    expect(w.patcher.calls).toEqual([]);

    w.leader.leading = true;
    // Already queued by publish(): enqueueAll adds no second entry.
    w.writer.enqueueAll();
    expect(w.queue.depth).toBe(1);
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
  });

  it('rewrites a status someone else changed', async () => {
    const w = world();
    w.put('100', 1);
    w.writer.publish('payers/acme', status(1, false));
    await w.writer.reconcile('payers/acme');
    const edited = status(1, false);
    edited.proxies = { total: 9, programmed: 9 };
    w.put('105', 1, edited);
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls.map((c) => [c.patch.metadata.resourceVersion, c.patch.status.proxies])).toEqual([
      ['100', { total: 0, programmed: 0 }],
      ['105', { total: 0, programmed: 0 }],
    ]);
  });

  it('does nothing for a route not in the cache, or with no status computed yet', async () => {
    const w = world();
    expect(await w.writer.reconcile('payers/gone')).toBe('gone');
    w.put('100', 1);
    expect(await w.writer.reconcile('payers/acme')).toBe('no-desired');
    expect(w.patcher.calls).toEqual([]);
  });

  it('drops a 404, throws a retryable error for 409 and 503, and gives up on 422', async () => {
    const w = world();
    w.put('100', 1);
    w.writer.publish('payers/acme', status(1, false));

    w.patcher.answers = [404];
    expect(await w.writer.reconcile('payers/acme')).toBe('gone-on-write');

    for (const code of [409, 503]) {
      w.patcher.answers = [code];
      const error = await w.writer.reconcile('payers/acme').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(KubeApiError);
      expect((error as KubeApiError).status).toBe(code);
      expect((error as KubeApiError).retryable).toBe(true);
    }

    w.patcher.answers = [422];
    expect(await w.writer.reconcile('payers/acme')).toBe('refused');
    expect(w.patcher.calls).toHaveLength(4);
  });

  it('cuts a condition message to the CRD\'s maxLength instead of having the write refused', async () => {
    const w = world();
    w.put('100', 1);
    const long = status(1, false);
    const programmed = long.conditions?.[2];
    if (programmed !== undefined) programmed.message = `proxy gw-1 refused version v2: ${'x'.repeat(40_000)}`;
    w.writer.publish('payers/acme', long);
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    const message = w.patcher.calls[0]?.patch.status.conditions?.[2]?.message ?? '';
    expect(message.length).toBe(32_768);
    expect(message.endsWith('x…')).toBe(true);
  });

  it('forgets a removed route', async () => {
    const w = world();
    w.put('100', 1);
    w.writer.publish('payers/acme', status(1, false));
    w.writer.remove('payers/acme');
    expect(await w.writer.reconcile('payers/acme')).toBe('no-desired');
  });
});
