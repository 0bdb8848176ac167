// Calls the Kubernetes status writer's reconcile directly against a recording fake of the status
// subresource and pins the exact PATCH bodies: the desired status as given, written once, with the
// cached resourceVersion, only by the leader, never for a stale computation; 404 drops, 409/5xx
// retry, other 4xx are terminal.

import { type ChangeRef, type ChangeTracer, NO_TRACING } from '../../../../controller/src/telemetry/change-tracer.ts';
import { describe, expect, it } from 'vitest';
import type { Condition, FhirRoute, FhirRouteStatus } from '../../../../api/index.ts';
import { KubeApiError } from '../../../../controller/src/kubernetes/internal/kube-client.ts';
import { RouteStatusWriter, type StatusPatch, type StatusPatcher } from '../../../../controller/src/kubernetes/internal/route-status-writer.ts';
import { WorkQueue } from '../../../../controller/src/kubernetes/internal/work-queue.ts';
import { silentLogger } from '../../../../runtime/index.ts';
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

function world(options: { leader?: boolean; tracer?: ChangeTracer } = {}) {
  const cache = new Map<string, { route: FhirRoute; resourceVersion: string }>();
  const patcher = new RecordingPatcher();
  const leader = { leading: options.leader ?? true, isLeader: () => leader.leading };
  const queue = new WorkQueue();
  // What DesiredStatuses would answer; the test sets it.
  const desired = new Map<string, FhirRouteStatus>();
  const writer = new RouteStatusWriter({
    patcher,
    routes: {
      get: (key) => cache.get(key)?.route,
      resourceVersionOf: (key) => cache.get(key)?.resourceVersion,
      keys: () => [...cache.keys()],
    },
    desired: (key) => desired.get(key),
    queue,
    leader,
    logger: silentLogger(),
    ...(options.tracer === undefined ? {} : { tracer: options.tracer, cause: () => CHANGE }),
  });
  const put = (resourceVersion: string, generation: number, current?: FhirRouteStatus): void => {
    const object = route({ destination: 'acme' }, { name: 'acme', namespace: 'payers', generation, uid: 'uid-1', resourceVersion });
    cache.set('payers/acme', { route: current === undefined ? object : { ...object, status: current }, resourceVersion });
  };
  /** The desired status changed: as the status reconciler does, the key goes to the writer. */
  const publish = (key: string, status: FhirRouteStatus): void => {
    desired.set(key, status);
    writer.enqueue(key);
  };
  return { cache, patcher, leader, queue, writer, put, publish, desired };
}

const CHANGE: ChangeRef = { changeRef: true };

/** A tracer that records the status spans opened and how each ended. */
function recordingTracer(): ChangeTracer & { spans: { cause: ChangeRef | undefined; operation: string; route: string | undefined; outcome?: string }[] } {
  const spans: { cause: ChangeRef | undefined; operation: string; route: string | undefined; outcome?: string }[] = [];
  return {
    ...NO_TRACING,
    spans,
    status(cause, operation, route) {
      const span: (typeof spans)[number] = { cause, operation, route };
      spans.push(span);
      return { end: (outcome) => void (span.outcome = outcome) };
    },
  };
}

describe('RouteStatusWriter spans', () => {
  it('opens one span per PATCH, linked to the change in force, ending in the PATCH’s result', async () => {
    const tracer = recordingTracer();
    const w = world({ tracer });
    w.put('100', 1);
    w.publish('payers/acme', status(1, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    w.patcher.answers = [409];
    w.put('101', 1);
    w.publish('payers/acme', status(1, true));
    await expect(w.writer.reconcile('payers/acme')).rejects.toThrow();
    expect(tracer.spans).toEqual([
      { cause: CHANGE, operation: 'write', route: 'payers/acme', outcome: 'written' },
      { cause: CHANGE, operation: 'write', route: 'payers/acme', outcome: 'conflict' },
    ]);
  });

  it('opens none when there is nothing to write', async () => {
    const tracer = recordingTracer();
    const w = world({ tracer });
    w.put('100', 1, status(1, false));
    w.publish('payers/acme', status(1, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('in-sync');
    expect(tracer.spans).toEqual([]);
  });
});

describe('RouteStatusWriter.reconcile', () => {
  it('PATCHes the desired status with the cached resourceVersion, then nothing once the cache has it', async () => {
    const w = world();
    w.put('100', 1);
    w.publish('payers/acme', status(1, false));
    expect(w.queue.depth).toBe(1);

    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls).toEqual([{ namespace: 'payers', name: 'acme', patch: { metadata: { resourceVersion: '100' }, status: status(1, false) } }]);

    // Until the watch delivers the write, the cache holds the old object: no second PATCH.
    expect(await w.writer.reconcile('payers/acme')).toBe('awaiting-own-write');
    w.put('101', 1, status(1, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('in-sync');
    expect(w.patcher.calls).toHaveLength(1);
  });

  it('writes the desired status as given, transition times included: it computes nothing of its own', async () => {
    const w = world();
    w.put('100', 1, status(1, false, T0));
    // DesiredStatuses keeps the stored lastTransitionTime of conditions that keep their status; here
    // the desired status says T1 for all three, and that is what goes out.
    w.publish('payers/acme', status(1, true, T1));
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls).toEqual([{ namespace: 'payers', name: 'acme', patch: { metadata: { resourceVersion: '100' }, status: status(1, true, T1) } }]);
  });

  it('writes nothing for a status computed for another generation than the cached object', async () => {
    const w = world();
    w.put('200', 2, status(1, true));
    w.publish('payers/acme', status(1, true));
    expect(await w.writer.reconcile('payers/acme')).toBe('stale-desired');
    w.publish('payers/acme', status(2, false));
    expect(await w.writer.reconcile('payers/acme')).toBe('written');
    expect(w.patcher.calls.map((c) => c.patch.status.observedGeneration)).toEqual([2]);
  });

  it('writes only while leading; leadership gained finds every route again', async () => {
    const w = world({ leader: false });
    w.put('100', 1);
    w.publish('payers/acme', status(1, false));
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
    w.publish('payers/acme', status(1, false));
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
    w.publish('payers/acme', status(1, false));

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

  it('writes nothing for a route that has no desired status any more', async () => {
    const w = world();
    w.put('100', 1);
    w.publish('payers/acme', status(1, false));
    w.desired.delete('payers/acme');
    expect(await w.writer.reconcile('payers/acme')).toBe('no-desired');
    expect(w.patcher.calls).toEqual([]);
  });
});
