// The StatusSink of Kubernetes mode: publish() only records the desired status and enqueues the key;
// reconcile(key) compares it with the cached object and PATCHes the status subresource when they differ.

import type { FhirRoute, FhirRouteStatus } from '../../../api/index.ts';
import { canonicalJson } from '../internal/canonical-json.ts';
import type { StatusSink } from '../status/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { TokenBucket } from './internal/backoff.ts';
import { splitKey } from './internal/objects.ts';
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
      const path = `/apis/fhirmesh.io/v1alpha1/namespaces/${namespace}/fhirroutes/${name}/status`;
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

/** The status the route should have now, given the cached object; undefined when not known yet. */
export type DesiredStatus = (key: string, cached: FhirRoute) => FhirRouteStatus | undefined;

export type StatusReconcileOutcome =
  /** Only the leader writes; the key is enqueued again when this replica becomes leader. */
  | 'not-leader'
  /** The route is not in the cache (deleted): nothing to write. */
  | 'gone'
  /** No status computed for it yet: publish() will enqueue it. */
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
  queue: WorkQueue;
  leader: { isLeader(): boolean };
  logger: Logger;
  metrics?: KubernetesMetrics;
  /** Spaces PATCHes out when many statuses change at once (a rollout, a leader taking over). */
  writeLimiter?: TokenBucket;
}

interface OwnWrite {
  uid: string;
  /** The cached resourceVersion the patch was computed from; the cache still holding it means it lags. */
  resourceVersionBefore: string;
  status: string;
}

export class RouteStatusWriter implements StatusSink {
  readonly #options: RouteStatusWriterOptions;
  readonly #published = new Map<string, FhirRouteStatus>();
  readonly #ownWrites = new Map<string, OwnWrite>();
  #desired: DesiredStatus = (key) => this.#published.get(key);

  constructor(options: RouteStatusWriterOptions) {
    this.#options = options;
  }

  /** StatusSink: records what the controller computed and enqueues the key. Never blocks. */
  publish(key: string, status: FhirRouteStatus): void {
    this.#published.set(key, status);
    this.#options.queue.add(key);
  }

  /** StatusSink: the route is gone from the translation; nothing to write for it. */
  remove(key: string): void {
    this.#published.delete(key);
    this.#ownWrites.delete(key);
  }

  /** The status last published for `key` (what the local status computation says). */
  published(key: string): FhirRouteStatus | undefined {
    return this.#published.get(key);
  }

  /**
   * Replaces how the desired status is found; the default is the published one. The cross-replica
   * computation plugs in here once the controller's proxies and translation are attached.
   */
  useDesiredStatus(desired: DesiredStatus): void {
    this.#desired = desired;
  }

  /** An event handler's whole job: the key goes in the queue. */
  enqueue(key: string): void {
    this.#options.queue.add(key);
  }

  /** Every route known to the cache or the status computation (leadership gained, proxies changed). */
  enqueueAll(): void {
    for (const key of new Set([...this.#options.routes.keys(), ...this.#published.keys()])) this.#options.queue.add(key);
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
    const computed = this.#desired(key, cached);
    if (computed === undefined) return 'no-desired';
    if (cached.metadata.generation !== undefined && computed.observedGeneration !== cached.metadata.generation) return 'stale-desired';
    const desired = withinSchemaLimits(withTransitionTimesOf(computed, cached.status));
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
    const response = await this.#options.patcher.patchStatus(namespace, name, { metadata: { resourceVersion }, status: desired });
    const { status } = response;
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

/** Keeps the server's lastTransitionTime of every condition whose status the write does not change. */
export function withTransitionTimesOf(desired: FhirRouteStatus, current: FhirRouteStatus | undefined): FhirRouteStatus {
  if (desired.conditions === undefined || current?.conditions === undefined) return desired;
  return {
    ...desired,
    conditions: desired.conditions.map((condition) => {
      const now = current.conditions?.find((c) => c.type === condition.type);
      return now?.status === condition.status && now.lastTransitionTime !== undefined ? { ...condition, lastTransitionTime: now.lastTransitionTime } : condition;
    }),
  };
}

/**
 * Cuts reason and message to the CRD's maxLength (1024, 32768): a proxy's NACK detail quoted in a
 * message is not ours to bound, and one character too many would make the apiserver refuse the write.
 */
function withinSchemaLimits(status: FhirRouteStatus): FhirRouteStatus {
  const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
  if (!(status.conditions ?? []).some((c) => c.reason.length > 1024 || c.message.length > 32768)) return status;
  return { ...status, conditions: status.conditions?.map((c) => ({ ...c, reason: cut(c.reason, 1024), message: cut(c.message, 32768) })) };
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
