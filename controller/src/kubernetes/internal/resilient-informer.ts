// One collection (FhirRoutes, Services, Secrets, ConfigMaps) kept in memory by client-node's ListWatch,
// hardened against its known weaknesses (issues of kubernetes-client/javascript, cited by number below):
// restarted after any error, watched for stalls, no callback of ours able to throw into it.

import { ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../../../runtime/index.ts';
import { ControllerError } from '../../errors.ts';
import { jitteredDelayMs } from './backoff.ts';
import { frozenCopy, objectKey, type KubeObject } from './objects.ts';
import { statusOf, type KubeClient } from './kube-client.ts';
import type { KubernetesMetrics } from './kubernetes-metrics.ts';
import { ObservedWatch } from './observed-watch.ts';

export interface InformerTiming {
  /**
   * No watch line (event or bookmark) and no successful list for this long: the watch is taken for
   * stalled and the informer restarts with a fresh list (kubernetes-client/javascript#596, #958). The
   * apiserver sends a bookmark only once its watch cache's resourceVersion has moved past the watch's
   * (seen on v1.37: none in 90 s on a quiet collection), which etcd's progress notifications
   * guarantee every 10 minutes by default; a shorter timeout would relist quiet collections (all
   * Secrets, say) for nothing.
   */
  stallTimeoutMs: number;
  /** client-node's inactivity abort (see ObservedWatch); it reconnects from the last resourceVersion. */
  watchInactivityTimeoutMs: number;
  /** The apiserver closes each watch after a time drawn from this range, as client-go does. */
  serverTimeoutSeconds: readonly [number, number];
  /** Restart delays after errors: from base, doubling, up to max, with jitter. */
  restartBaseMs: number;
  restartMaxMs: number;
  /** A run that lasted this long before failing starts the backoff over. */
  stableAfterMs: number;
  listTimeoutMs: number;
}

export const DEFAULT_INFORMER_TIMING: InformerTiming = {
  stallTimeoutMs: 15 * 60_000,
  watchInactivityTimeoutMs: 90_000,
  serverTimeoutSeconds: [300, 600],
  restartBaseMs: 1_000,
  restartMaxMs: 30_000,
  stableAfterMs: 60_000,
  listTimeoutMs: 60_000,
};

/** Told of every change to the cache: `previous` and `current` are the stored (frozen) values. */
export type InformerListener<T> = (key: string, previous: T | undefined, current: T | undefined) => void;

export interface ResilientInformerOptions<T> {
  /** For logs and metrics, e.g. fhirroutes.fhirmesh.io. */
  resource: string;
  config: KubeConfig;
  client: KubeClient;
  /** Collection path, e.g. /api/v1/secrets or /api/v1/namespaces/payers/secrets. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** What is kept of each object; it is copied and frozen before it is stored. */
  project: (object: KubeObject) => T;
  logger: Logger;
  metrics?: KubernetesMetrics;
  timing?: Partial<InformerTiming>;
  random?: () => number;
}

interface Stored<T> {
  uid: string;
  resourceVersion: string;
  value: T;
}

type RunState = 'new' | 'running' | 'stopped';

export class ResilientInformer<T> {
  readonly resource: string;
  readonly #options: ResilientInformerOptions<T>;
  readonly #timing: InformerTiming;
  readonly #store = new Map<string, Stored<T>>();
  readonly #listeners: InformerListener<T>[] = [];
  readonly #firstSync: Promise<void>;
  #resolveFirstSync: () => void = () => undefined;
  #rejectFirstSync: (err: Error) => void = () => undefined;
  #state: RunState = 'new';
  /**
   * Each run (a fresh ListWatch) has a number; callbacks of any other run are ignored. A stopped
   * ListWatch still calls back (its aborted request ends later), and re-starting one instance
   * invites the double start of #1933, so a restart always makes a new instance.
   */
  #run = 0;
  #live: ListWatch<KubernetesObject> | undefined;
  #runStartedMs = 0;
  #lastActivityMs = 0;
  #attempt = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #synced = false;
  #restarts = 0;
  #lists = 0;

  constructor(options: ResilientInformerOptions<T>) {
    this.resource = options.resource;
    this.#options = options;
    this.#timing = { ...DEFAULT_INFORMER_TIMING, ...options.timing };
    this.#firstSync = new Promise<void>((resolve, reject) => {
      this.#resolveFirstSync = resolve;
      this.#rejectFirstSync = reject;
    });
    // start() hands this promise out; until someone awaits it, a rejection must not count as unhandled.
    this.#firstSync.catch(() => undefined);
  }

  /**
   * Lists, then watches, for good. Resolves after the first complete list; rejects only when that
   * list is refused for a reason retrying cannot fix (400, 401, 403, 404), saying what to do.
   */
  start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`the ${this.resource} informer was started twice`);
    this.#state = 'running';
    this.#launch();
    const every = Math.max(20, Math.min(this.#timing.stallTimeoutMs / 4, 5_000));
    this.#stallTimer = setInterval(() => this.#checkStall(), every);
    this.#stallTimer.unref();
    return this.#firstSync;
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    clearTimeout(this.#restartTimer);
    clearInterval(this.#stallTimer);
    this.#run++;
    const live = this.#live;
    this.#live = undefined;
    this.#rejectFirstSync(new ControllerError('FHIRMESH_SOURCE_UNREADABLE', `${this.resource}: stopped before the first list`));
    await live?.stop();
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** The stored value; frozen and shared, never to be mutated. */
  get(key: string): T | undefined {
    return this.#store.get(key)?.value;
  }

  uidOf(key: string): string | undefined {
    return this.#store.get(key)?.uid;
  }

  resourceVersionOf(key: string): string | undefined {
    return this.#store.get(key)?.resourceVersion;
  }

  keys(): string[] {
    return [...this.#store.keys()];
  }

  values(): T[] {
    return [...this.#store.values()].map((stored) => stored.value);
  }

  get size(): number {
    return this.#store.size;
  }

  /** Listeners run synchronously on every change and must only record or enqueue; a throw is logged. */
  onChange(listener: InformerListener<T>): void {
    this.#listeners.push(listener);
  }

  /** Restarts so far and completed lists (the first included), for tests and /debug. */
  stats(): { restarts: number; lists: number; msSinceActivity: number } {
    return { restarts: this.#restarts, lists: this.#lists, msSinceActivity: Math.round(this.#now() - this.#lastActivityMs) };
  }

  #launch(): void {
    const run = ++this.#run;
    const { config, path, labelSelector, fieldSelector } = this.#options;
    const [minSeconds, maxSeconds] = this.#timing.serverTimeoutSeconds;
    const random = this.#options.random ?? Math.random;
    const watch = new ObservedWatch(
      config,
      {
        line: (phase, object) => {
          if (run !== this.#run) return;
          this.#lastActivityMs = this.#now();
          if (phase === 'ERROR') this.#watchErrorEvent(object);
        },
        internalFailure: (err) => this.#options.logger.log('error', 'informer callback failed; restarting it', { resource: this.resource, error: String(err) }),
        live: () => run === this.#run && this.#state === 'running',
      },
      {
        inactivityTimeoutMs: this.#timing.watchInactivityTimeoutMs,
        serverTimeoutSeconds: () => Math.round(minSeconds + (maxSeconds - minSeconds) * random()),
      },
    );
    const informer = new ListWatch<KubernetesObject>(path, watch, () => this.#list(run), false, labelSelector, fieldSelector);
    informer.on('add', (object) => this.#handle(run, () => this.#upsert(object as KubeObject)));
    informer.on('update', (object) => this.#handle(run, () => this.#upsert(object as KubeObject)));
    informer.on('delete', (object) => this.#handle(run, () => this.#remove(object as KubeObject)));
    informer.on('error', (err) => this.#handle(run, () => this.#failed(err)));
    this.#live = informer;
    this.#runStartedMs = this.#now();
    this.#lastActivityMs = this.#runStartedMs;
    informer.start().catch((err: unknown) => this.#handle(run, () => this.#failed(err)));
  }

  /** Runs `body` for callbacks of the live run only; nothing thrown escapes (an unhandled rejection would end the process). */
  #handle(run: number, body: () => void): void {
    if (run !== this.#run || this.#state !== 'running') return;
    try {
      body();
    } catch (err) {
      this.#options.logger.log('error', 'informer event handling failed', { resource: this.resource, error: String(err) });
    }
  }

  /** ListWatch's list function: our own paged list, which also replaces the cache in one step. */
  async #list(run: number): Promise<KubernetesListObject<KubernetesObject>> {
    const list = await this.#options.client.list<KubeObject>(this.#options.path, {
      ...(this.#options.labelSelector === undefined ? {} : { labelSelector: this.#options.labelSelector }),
      ...(this.#options.fieldSelector === undefined ? {} : { fieldSelector: this.#options.fieldSelector }),
      timeoutMs: this.#timing.listTimeoutMs,
    });
    // A superseded run's list must not overwrite the cache; the throw ends that run (its error is ignored).
    if (run !== this.#run || this.#state !== 'running') throw new Error(`${this.resource}: list of a superseded run`);
    this.#handle(run, () => this.#replace(list.items));
    return list as KubernetesListObject<KubernetesObject>;
  }

  /**
   * The cache becomes exactly the list: what is missing was deleted while we were not watching.
   * ListWatch then replays the items as add/update events, which find nothing new.
   */
  #replace(items: readonly KubeObject[]): void {
    const seen = new Set<string>();
    let changed = 0;
    for (const item of items) {
      seen.add(objectKey(item));
      if (this.#upsert(item)) changed++;
    }
    for (const [key, stored] of [...this.#store]) {
      if (seen.has(key)) continue;
      this.#store.delete(key);
      changed++;
      this.#emit(key, stored.value, undefined);
    }
    this.#lists++;
    this.#lastActivityMs = this.#now();
    if (!this.#synced) {
      this.#synced = true;
      this.#options.logger.log('info', 'informer synced', { resource: this.resource, objects: this.#store.size });
      this.#resolveFirstSync();
    } else {
      this.#options.logger.log('info', 'informer relisted', { resource: this.resource, objects: this.#store.size, changed });
    }
  }

  /** True when the cache changed. Same uid and resourceVersion: a replay (relist, reconnect), ignored (#2424). */
  #upsert(object: KubeObject): boolean {
    const metadata = object.metadata;
    if (metadata?.name === undefined) return false;
    const key = objectKey(object);
    const uid = metadata.uid ?? '';
    const resourceVersion = metadata.resourceVersion ?? '';
    const previous = this.#store.get(key);
    if (previous !== undefined && previous.uid === uid && previous.resourceVersion === resourceVersion) return false;
    // A different uid under the same name is a delete and a re-create that happened while we were
    // not watching (ListWatch keys by name): listeners see previous and current with different uids.
    const value = frozenCopy(this.#options.project(object));
    this.#store.set(key, { uid, resourceVersion, value });
    this.#emit(key, previous?.value, value);
    return true;
  }

  #remove(object: KubeObject): void {
    const key = objectKey(object);
    const previous = this.#store.get(key);
    if (previous === undefined) return;
    // A delete of an older incarnation than the one cached (the re-create was listed first).
    const uid = object.metadata?.uid;
    if (uid !== undefined && uid !== previous.uid) return;
    this.#store.delete(key);
    this.#emit(key, previous.value, undefined);
  }

  #emit(key: string, previous: T | undefined, current: T | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(key, previous, current);
      } catch (err) {
        this.#options.logger.log('error', 'informer listener threw', { resource: this.resource, key, error: String(err) });
      }
    }
  }

  #watchErrorEvent(object: unknown): void {
    const status = object as { code?: unknown; reason?: unknown; message?: unknown } | null;
    // 410: ListWatch drops its resourceVersion and relists when the server closes the stream.
    const expired = status?.code === 410;
    this.#options.logger.log(expired ? 'info' : 'warn', expired ? 'watch resourceVersion expired; relisting' : 'watch sent an error', {
      resource: this.resource,
      code: status?.code,
      reason: status?.reason,
      message: status?.message,
    });
  }

  #failed(err: unknown): void {
    const status = statusOf(err);
    if (!this.#synced && (status === 400 || status === 401 || status === 403 || status === 404)) {
      this.#rejectFirstSync(new ControllerError('FHIRMESH_SOURCE_UNREADABLE', startFailure(this.resource, this.#options.path, status, err), { cause: err }));
      void this.stop();
      return;
    }
    const reason = status === 0 ? 'error' : `http-${status}`;
    this.#options.logger.log('warn', 'informer failed; restarting with backoff', { resource: this.resource, status, error: errorText(err) });
    this.#scheduleRestart(reason);
  }

  #checkStall(): void {
    if (this.#state !== 'running' || this.#live === undefined) return;
    const quietMs = this.#now() - this.#lastActivityMs;
    if (quietMs < this.#timing.stallTimeoutMs) return;
    this.#options.logger.log('warn', 'no watch event and no list for too long: the watch is taken for stalled; restarting', {
      resource: this.resource,
      quietMs: Math.round(quietMs),
    });
    this.#scheduleRestart('stalled');
  }

  /** At most one restart pending: errors of one run, the watchdog and a late callback collapse into it. */
  #scheduleRestart(reason: string): void {
    if (this.#restartTimer !== undefined || this.#state !== 'running') return;
    const failed = this.#live;
    this.#live = undefined;
    this.#run++;
    failed?.stop().catch(() => undefined);
    if (this.#now() - this.#runStartedMs >= this.#timing.stableAfterMs) this.#attempt = 0;
    const delayMs = jitteredDelayMs(this.#attempt++, this.#timing.restartBaseMs, this.#timing.restartMaxMs, this.#options.random);
    this.#restarts++;
    this.#options.metrics?.informerRestarted(this.resource, reason);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#state === 'running') this.#launch();
    }, delayMs);
  }

  #now(): number {
    return performance.now();
  }
}

function startFailure(resource: string, path: string, status: number, err: unknown): string {
  const hint =
    status === 400
      ? 'the apiserver refused the request itself (a selector it does not support?): report this as a fhirmesh bug'
      : status === 401
      ? 'the apiserver refused the credentials: check the kubeconfig, or the pod service-account token'
      : status === 403
        ? "the controller's identity may not list and watch it: apply the RBAC of charts/fhirmesh (or check --namespace)"
        : 'the apiserver does not serve it: install the CRD (kubectl apply -f crds/) and wait until it is Established';
  return `cannot list ${resource} (${path}): ${errorText(err)}: ${hint}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
