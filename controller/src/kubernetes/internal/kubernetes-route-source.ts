// Kubernetes mode's RouteWatcher: FhirRoutes, and the Services and Secrets they name, from three
// informers; tells compile only about changes that can change a table, each state an immutable snapshot.

import { referencesOf, type FhirRoute, type RefResolver } from '../../../../api/index.ts';
import { canonicalJson, type Logger } from '../../../../runtime/index.ts';
import { notifyListeners, SortedKeys, type ChangeListener, type RouteWatcher, type SourceState } from '../../sources/index.ts';
import type { KubeObject } from './objects.ts';
import type { ResilientInformer } from './resilient-informer.ts';

/** The Secret keys compile reads (caSecretRef → ca.crt; clientCertSecretRef → tls.crt, tls.key); nothing else is kept. */
export const SECRET_KEYS = ['ca.crt', 'tls.crt', 'tls.key'] as const;
export type SecretData = Partial<Record<(typeof SECRET_KEYS)[number], string>>;
export interface ServiceEntry {
  uid: string;
}

/** A FhirRoute as kept in the cache: managedFields dropped (large, and never read). */
export function projectRoute(object: KubeObject): FhirRoute {
  const { managedFields: _managedFields, ...metadata } = object.metadata ?? {};
  return { ...(object as unknown as FhirRoute), metadata: metadata as FhirRoute['metadata'] };
}

export function projectService(object: KubeObject): ServiceEntry {
  return { uid: object.metadata?.uid ?? '' };
}

/** Only the three keys, decoded: a Secret's other keys (and whole Helm release Secrets) are not kept. */
export function projectSecret(object: KubeObject): SecretData {
  const data = (object.data ?? {}) as Record<string, unknown>;
  const kept: SecretData = {};
  for (const key of SECRET_KEYS) {
    const value = data[key];
    if (typeof value === 'string') kept[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  return kept;
}

export interface KubernetesRouteSourceOptions {
  routes: ResilientInformer<FhirRoute>;
  services: ResilientInformer<ServiceEntry>;
  secrets: ResilientInformer<SecretData>;
  /** The one namespace watched (--namespace); all when absent. */
  namespace?: string;
  logger: Logger;
  /** Monotonic milliseconds (performance.now()), for when a change was observed. */
  nowMs?: () => number;
}

export class KubernetesRouteSource implements RouteWatcher {
  readonly description: string;
  readonly #options: KubernetesRouteSourceOptions;
  readonly #listeners: ChangeListener[] = [];
  #snapshot: SourceState | undefined;
  /** Route keys in key order, kept as routes come and go: sorting 10,000 keys on every change is not. Built at first use. */
  #keys: SortedKeys | undefined;
  /** How many routes name each Service and Secret (namespace/name), counted as routes change, not recounted. */
  readonly #serviceUses = new Map<string, number>();
  readonly #secretUses = new Map<string, number>();
  #started = false;

  constructor(options: KubernetesRouteSourceOptions) {
    this.#options = options;
    this.description = `kubernetes (${options.namespace === undefined ? 'all namespaces' : `namespace ${options.namespace}`})`;
    options.routes.onChange((key, previous, current) => {
      if (!changesTable(previous, current)) return;
      if (previous === undefined) this.#keys?.add(key);
      if (current === undefined) this.#keys?.delete(key);
      this.#countReferences(previous, -1);
      this.#countReferences(current, 1);
      this.#changed();
    });
    options.services.onChange((key, previous, current) => {
      if (previous?.uid === current?.uid) return;
      if (this.#serviceUses.has(key)) this.#changed();
    });
    options.secrets.onChange((key, previous, current) => {
      if (!this.#secretUses.has(key)) return;
      if (canonicalJson(previous ?? null) !== canonicalJson(current ?? null)) this.#changed();
    });
  }

  /** Resolves once all three informers have listed: a table built before would be missing routes. */
  async start(): Promise<void> {
    await Promise.all([this.#options.routes.start(), this.#options.services.start(), this.#options.secrets.start()]);
    this.#snapshot = undefined;
    this.#started = true;
  }

  state(): SourceState {
    this.#snapshot ??= this.#build();
    return this.#snapshot;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  async stop(): Promise<void> {
    await Promise.all([this.#options.routes.stop(), this.#options.services.stop(), this.#options.secrets.stop()]);
  }

  #changed(): void {
    this.#snapshot = undefined;
    if (!this.#started) return;
    // Informers emit synchronously from the watch line's arrival (client-node's ListWatch, then
    // ResilientInformer), so now is when the event was observed.
    notifyListeners(this.#listeners, (this.#options.nowMs ?? (() => performance.now()))(), this.#options.logger);
  }

  /**
   * Routes sorted by key, and a resolver over copies of just the Services and Secrets they name:
   * Translation resolves per-namespace tables lazily, later, and must see what its verdicts saw.
   */
  #build(): SourceState {
    const { routes, services, secrets, namespace: watched } = this.#options;
    this.#keys ??= new SortedKeys(routes.keys());
    const list: FhirRoute[] = [];
    for (const key of this.#keys) {
      const route = routes.get(key);
      if (route !== undefined) list.push(route);
    }
    const existing = new Set([...this.#serviceUses.keys()].filter((key) => services.get(key) !== undefined));
    const secretData = new Map<string, SecretData>();
    for (const key of this.#secretUses.keys()) {
      const data = secrets.get(key);
      if (data !== undefined) secretData.set(key, data);
    }
    const refs: RefResolver = {
      // No files in a cluster: the tls.*File fields are for routes files of standalone mode.
      file: () => undefined,
      secret: (namespace, name, key) => secretData.get(`${namespace}/${name}`)?.[key as keyof SecretData],
      // Services outside the watched namespace are not seen: trusted by name, as standalone does.
      service: (namespace, name) => (watched !== undefined && namespace !== watched ? undefined : { exists: existing.has(`${namespace}/${name}`) }),
    };
    return { routes: list, refs };
  }

  #countReferences(route: FhirRoute | undefined, by: 1 | -1): void {
    if (route === undefined) return;
    const references = referencesOf(route);
    for (const key of references.services) count(this.#serviceUses, key, by);
    for (const key of references.secrets) count(this.#secretUses, key, by);
  }
}

function count(uses: Map<string, number>, key: string, by: 1 | -1): void {
  const next = (uses.get(key) ?? 0) + by;
  if (next > 0) uses.set(key, next);
  else uses.delete(key);
}

/**
 * Whether compile could see a difference: a new or gone object, another incarnation (uid), a new
 * generation or spec, or creation time (conflicts). Status writes and relist replays change none of these.
 */
function changesTable(previous: FhirRoute | undefined, current: FhirRoute | undefined): boolean {
  if (previous === undefined || current === undefined) return previous !== current;
  const a = previous.metadata;
  const b = current.metadata;
  if (a.uid !== b.uid || a.generation !== b.generation || a.creationTimestamp !== b.creationTimestamp) return true;
  return canonicalJson(previous.spec) !== canonicalJson(current.spec);
}
