// The StatusSink of Kubernetes mode: enqueue() only queues the key; reconcile(key) reads the route's
// desired status, compares it with the cached object and PATCHes the status subresource when they differ.

import type { ChangeRef, ChangeTracer } from '../../telemetry/change-tracer.ts';
import { API_VERSION, type FhirRoute, type FhirRouteStatus } from '../../../../api/index.ts';
import { canonicalJson, type Logger } from '../../../../runtime/index.ts';
import type { StatusSink } from '../../status/index.ts';
import type { TokenBucket } from './backoff.ts';
import { splitKey } from './objects.ts';
import { errorOf, type KubeClient } from './kube-client.ts';
import type { KubernetesMetrics } from './kubernetes-metrics.ts';
import type { WorkQueue } from './work-queue.ts';

export const FIELD_MANAGER = 'fhirmesh-controller';

/**
 * The JSON merge patch sent to the status subresource. The cached resourceVersion makes it
 * conditional: if the object changed since the cache saw it (a spec edit, another writer, a delete
 * and re-create) the apiserver answers 409 and the key is retried once the cache has caught up. A
 * metadata.uid in the patch would not do: the status subresource ignores metadata (checked on v1.37).
 */
export interface StatusPatch {
  metadata: { resourceVersion: string };
  status: FhirRouteStatus;
}

/** The one write reconcile makes; a recording fake in tests, the apiserver in the controller. */
export interface StatusPatcher {
  patchStatus(namespace: string, name: string, patch: StatusPatch): Promise<{ status: number; body: unknown }>;
}

export function kubeStatusPatcher(client: KubeClient): StatusPatcher {
  return {
    async patchStatus(namespace, name, patch) {
      const path = `/apis/${API_VERSION}/namespaces/${namespace}/fhirroutes/${name}/status`;
      return client.request({ method: 'PATCH', path, query: { fieldManager: FIELD_MANAGER }, body: patch, contentType: 'application/merge-patch+json' });
    },
  };
}

/** The informer cache of FhirRoutes, as far as the writer reads it. */
export interface RouteCache {
  get(key: string): FhirRoute | undefined;
  resourceVersionOf(key: string): string | undefined;
  keys(): string[];
}

export type StatusReconcileOutcome =
  /** Only the leader writes; the key is enqueued again when this replica becomes leader. */
  | 'not-leader'
  /** The route is not in the cache (deleted): nothing to write. */
  | 'gone'
  /** No desired status for it (not computed yet, or the route left the translation): enqueued again when there is. */
  | 'no-desired'
  /** Computed for another generation than the cached one: a newer computation is on its way. */
  | 'stale-desired'
  | 'in-sync'
  /** This status was written a moment ago and the cache has not caught up with the write yet. */
  | 'awaiting-own-write'
  | 'written'
  /** 404 from the PATCH: deleted since the cache saw it. */
  | 'gone-on-write'
  /** A 4xx that retrying cannot fix (invalid, forbidden): logged, not retried until something changes. */
  | 'refused';

export interface RouteStatusWriterOptions {
  patcher: StatusPatcher;
  routes: RouteCache;
  /** The one computation of route status (DesiredStatuses.desiredStatus): what is written, never recomputed here. */
  desired: (key: string) => FhirRouteStatus | undefined;
  queue: WorkQueue;
  leader: { isLeader(): boolean };
  logger: Logger;
  metrics?: KubernetesMetrics;
  /** Spaces PATCHes out when many statuses change at once (a rollout, a leader taking over). */
  writeLimiter?: TokenBucket;
  /** A span per PATCH, linked to the change in force (cause). */
  tracer?: ChangeTracer;
  cause?: () => ChangeRef | undefined;
}

interface OwnWrite {
  uid: string;
  /** The cached resourceVersion the patch was computed from; the cache still holding it means it lags. */
  resourceVersionBefore: string;
  status: string;
}

export class RouteStatusWriter implements StatusSink {
  readonly #options: RouteStatusWriterOptions;
  readonly #ownWrites = new Map<string, OwnWrite>();

  constructor(options: RouteStatusWriterOptions) {
    this.#options = options;
  }

  /** StatusSink, and every event handler's whole job: the key goes in the queue. Never blocks. */
  enqueue(key: string): void {
    this.#options.queue.add(key);
  }

  /** Every route known to the cache (leadership gained). */
  enqueueAll(): void {
    for (const key of this.#options.routes.keys()) this.#options.queue.add(key);
  }

  /**
   * Reads the cached object and the desired status and PATCHes when they differ. Safe to run any
   * number of times. Throws (so the queue retries with backoff) on no answer, 409, 429 and 5xx.
   */
  async reconcile(key: string): Promise<StatusReconcileOutcome> {
    if (!this.#options.leader.isLeader()) return 'not-leader';
    const cached = this.#options.routes.get(key);
    if (cached === undefined) {
      this.#ownWrites.delete(key);
      return 'gone';
    }
    const desired = this.#options.desired(key);
    if (desired === undefined) {
      this.#ownWrites.delete(key);
      return 'no-desired';
    }
    if (cached.metadata.generation !== undefined && desired.observedGeneration !== cached.metadata.generation) return 'stale-desired';
    const desiredText = comparable(desired);
    if (comparable(cached.status) === desiredText) return 'in-sync';

    const uid = cached.metadata.uid ?? '';
    const resourceVersion = this.#options.routes.resourceVersionOf(key) ?? '';
    const own = this.#ownWrites.get(key);
    if (own !== undefined && own.uid === uid && own.resourceVersionBefore === resourceVersion && own.status === desiredText) return 'awaiting-own-write';

    await this.#options.writeLimiter?.take();
    // Leadership can be lost while waiting for a write slot.
    if (!this.#options.leader.isLeader()) return 'not-leader';
    const { namespace, name } = splitKey(key);
    const span = this.#options.tracer?.status(this.#options.cause?.(), 'write', key);
    let response: Awaited<ReturnType<StatusPatcher['patchStatus']>>;
    try {
      response = await this.#options.patcher.patchStatus(namespace, name, { metadata: { resourceVersion }, status: desired });
    } catch (err) {
      span?.end('retry');
      throw err;
    }
    const { status } = response;
    span?.end(status >= 200 && status < 300 ? 'written' : status === 404 ? 'gone' : status === 409 ? 'conflict' : status === 429 || status >= 500 ? 'retry' : 'refused', { http_status: String(status) });
    if (status >= 200 && status < 300) {
      this.#ownWrites.set(key, { uid, resourceVersionBefore: resourceVersion, status: desiredText });
      this.#options.metrics?.statusWrite('written');
      this.#options.logger.log('debug', 'route status written', { route: key, generation: desired.observedGeneration, conditions: summary(desired) });
      return 'written';
    }
    const error = errorOf({ method: 'PATCH', path: `fhirroutes/${key}/status` }, response);
    if (status === 404) {
      this.#options.metrics?.statusWrite('gone');
      return 'gone-on-write';
    }
    if (error.retryable) {
      this.#options.metrics?.statusWrite(status === 409 ? 'conflict' : 'retry');
      throw error;
    }
    this.#options.metrics?.statusWrite('refused');
    this.#options.logger.log('error', 'route status refused by the apiserver; not retried until the route or its status changes', {
      route: key,
      status,
      error: error.message,
    });
    return 'refused';
  }
}

/** The fields this controller owns, in one canonical text: what "differs" means. */
function comparable(status: FhirRouteStatus | undefined): string {
  const conditions = [...(status?.conditions ?? [])]
    .map(({ type, status: value, reason, message, observedGeneration, lastTransitionTime }) => ({ type, status: value, reason, message, observedGeneration, lastTransitionTime }))
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  return canonicalJson({ observedGeneration: status?.observedGeneration, conditions, proxies: status?.proxies });
}

function summary(status: FhirRouteStatus): string {
  return (status.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(',');
}
