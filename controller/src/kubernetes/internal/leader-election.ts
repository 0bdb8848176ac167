// Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: acquire
// when absent, released or expired, renew on a timer, optimistic concurrency by resourceVersion.

import type { Logger } from '../../../../runtime/index.ts';
import { microTime } from './micro-time.ts';
import { errorOf, type KubeClient } from './kube-client.ts';

export interface LeaseSpec {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export interface StoredLease {
  resourceVersion: string;
  spec: Partial<LeaseSpec>;
}

/** Someone else wrote the Lease first (create: it exists; update: resourceVersion moved on). */
export class LeaseConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseConflictError';
  }
}

/** Where the Lease lives; a fake in unit tests. Writes throw LeaseConflictError on 409. */
export interface LeaseStore {
  /** namespace/name, for logs. */
  readonly description: string;
  get(): Promise<StoredLease | undefined>;
  create(spec: LeaseSpec): Promise<StoredLease>;
  update(resourceVersion: string, spec: LeaseSpec): Promise<StoredLease>;
}

export interface LeaderElectionTiming {
  /** How long followers wait, after they last saw the Lease change, before taking it. */
  leaseDurationMs: number;
  /** The leader steps down when it has not renewed for this long (well before followers may take over). */
  renewDeadlineMs: number;
  /** Followers try this often (with up to 20% jitter); a leader retries a failed renewal this often. */
  retryPeriodMs: number;
}

/** Whether this replica leads, and a way to hear when that changes. */
export interface Leadership {
  isLeader(): boolean;
  onChange(listener: (leading: boolean) => void): void;
}

/** Leader election turned off (one replica): always the leader. */
export const ALWAYS_LEADER: Leadership = { isLeader: () => true, onChange: () => undefined };

export interface LeaderElectorOptions {
  store: LeaseStore;
  /** holderIdentity: the replica id (pod name). */
  identity: string;
  timing: LeaderElectionTiming;
  logger: Logger;
  /** Wall clock, for the times written into the Lease (read by people and kubectl). */
  wallClockMs?: () => number;
  /** Monotonic clock, for every decision: expiry is judged by when *we* saw the Lease change, so clock skew between replicas does not matter. */
  monotonicMs?: () => number;
  random?: () => number;
}

/** What one attempt found: whether we hold the Lease now, and who does. */
export interface ElectionRound {
  holding: boolean;
  holder: string;
}

export class LeaderElector implements Leadership {
  readonly #options: LeaderElectorOptions;
  readonly #listeners: ((leading: boolean) => void)[] = [];
  #leading = false;
  #observed: { record: string; atMs: number; lease: StoredLease } | undefined;
  #lastRenewMs = 0;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #lastError: string | undefined;

  constructor(options: LeaderElectorOptions) {
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = options.timing;
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
      throw new RangeError(`leader election needs lease duration > renew deadline > retry period > 0 (got ${leaseDurationMs}, ${renewDeadlineMs}, ${retryPeriodMs} ms)`);
    }
    this.#options = options;
  }

  isLeader(): boolean {
    return this.#leading;
  }

  onChange(listener: (leading: boolean) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * One attempt, as client-go's tryAcquireOrRenew: create the Lease if absent; else take it over when
   * ours, released (empty holder) or not seen to change for its leaseDurationSeconds; else leave it.
   */
  async tryAcquireOrRenew(): Promise<ElectionRound> {
    const { store, identity, timing } = this.#options;
    const nowMs = this.#wallMs();
    const seenAtMs = this.#monoMs();
    const leaseDurationSeconds = Math.max(1, Math.ceil(timing.leaseDurationMs / 1000));
    const current = await store.get();
    if (current === undefined) {
      try {
        const created = await store.create({
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(nowMs),
          renewTime: microTime(nowMs),
          leaseTransitions: 0,
        });
        this.#observe(created, seenAtMs);
        return { holding: true, holder: identity };
      } catch (err) {
        if (err instanceof LeaseConflictError) return { holding: false, holder: '' };
        throw err;
      }
    }
    this.#observe(current, seenAtMs);
    const holder = current.spec.holderIdentity ?? '';
    if (holder !== '' && holder !== identity && !this.#expired(current, seenAtMs)) return { holding: false, holder };
    const ours = holder === identity;
    try {
      const updated = await store.update(current.resourceVersion, {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: ours && current.spec.acquireTime !== undefined ? current.spec.acquireTime : microTime(nowMs),
        renewTime: microTime(nowMs),
        leaseTransitions: (current.spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      });
      this.#observe(updated, seenAtMs);
      return { holding: true, holder: identity };
    } catch (err) {
      if (err instanceof LeaseConflictError) return { holding: false, holder };
      throw err;
    }
  }

  /** Runs the election until stop(): followers try every retry period, the leader renews every renewDeadline/2. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#options.logger.log('info', 'leader election started', { lease: this.#options.store.description, identity: this.#options.identity });
    this.#schedule(0);
  }

  /** Stops, and releases the Lease if held, so a follower takes over at its next try instead of after expiry. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#inFlight;
    if (this.#leading) this.#setLeading(false, 'shutting down');
    // Released even when the last round took the Lease just as we stopped and never acted on it.
    const observed = this.#observed?.lease;
    if (observed === undefined || observed.spec.holderIdentity !== this.#options.identity) return;
    const nowMs = this.#wallMs();
    try {
      await this.#options.store.update(observed.resourceVersion, {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: microTime(nowMs),
        renewTime: microTime(nowMs),
        leaseTransitions: observed.spec.leaseTransitions ?? 0,
      });
      this.#options.logger.log('info', 'leader lease released', { lease: this.#options.store.description });
    } catch (err) {
      this.#options.logger.log('warn', 'could not release the leader lease; followers take over when it expires', { error: String(err) });
    }
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#round().finally(() => (this.#inFlight = undefined));
    }, delayMs);
  }

  /** One round and the next one scheduled; never rejects. */
  async #round(): Promise<void> {
    const { timing, identity, logger } = this.#options;
    let round: ElectionRound | undefined;
    try {
      round = await this.tryAcquireOrRenew();
      this.#lastError = undefined;
    } catch (err) {
      // Once per distinct failure at warn: an apiserver down for a minute is not 30 identical lines.
      const text = String(err);
      logger.log(text === this.#lastError ? 'debug' : 'warn', this.#leading ? 'cannot renew the leader lease' : 'cannot read the leader lease', { lease: this.#options.store.description, error: text });
      this.#lastError = text;
    }
    if (!this.#running) return;
    const nowMs = this.#monoMs();
    if (round?.holding === true) {
      this.#lastRenewMs = nowMs;
      if (!this.#leading) this.#setLeading(true, 'acquired the lease');
    } else if (this.#leading) {
      if (round !== undefined && round.holder !== '' && round.holder !== identity) this.#setLeading(false, `lease taken by ${round.holder}`);
      else if (nowMs - this.#lastRenewMs >= timing.renewDeadlineMs) this.#setLeading(false, `not renewed within ${timing.renewDeadlineMs} ms`);
    }
    const jitter = 1 + 0.2 * (this.#options.random ?? Math.random)();
    this.#schedule(this.#leading && round?.holding === true ? timing.renewDeadlineMs / 2 : timing.retryPeriodMs * jitter);
  }

  #setLeading(leading: boolean, why: string): void {
    this.#leading = leading;
    this.#options.logger.log(leading ? 'info' : 'warn', leading ? 'became leader' : 'stopped leading', { identity: this.#options.identity, why });
    for (const listener of this.#listeners) {
      try {
        listener(leading);
      } catch (err) {
        this.#options.logger.log('error', 'leadership listener threw', { error: String(err) });
      }
    }
  }

  /** Remembers when the record last changed, by our clock. */
  #observe(lease: StoredLease, seenAtMs: number): void {
    const record = `${lease.resourceVersion}\0${JSON.stringify(lease.spec)}`;
    if (this.#observed?.record !== record) this.#observed = { record, atMs: seenAtMs, lease };
  }

  #expired(lease: StoredLease, nowMs: number): boolean {
    const durationMs = (lease.spec.leaseDurationSeconds ?? Math.ceil(this.#options.timing.leaseDurationMs / 1000)) * 1000;
    return this.#observed === undefined || this.#observed.atMs + durationMs <= nowMs;
  }

  #wallMs(): number {
    return (this.#options.wallClockMs ?? Date.now)();
  }

  #monoMs(): number {
    return (this.#options.monotonicMs ?? (() => performance.now()))();
  }
}

/** The Lease in the apiserver. Requests time out within `timeoutMs` so a hung call cannot outlive the renew deadline. */
export function kubeLeaseStore(client: KubeClient, namespace: string, name: string, timeoutMs: number): LeaseStore {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const path = `${collection}/${name}`;
  const toStored = (body: unknown): StoredLease => {
    const lease = body as { metadata?: { resourceVersion?: string }; spec?: Partial<LeaseSpec> };
    return { resourceVersion: lease.metadata?.resourceVersion ?? '', spec: lease.spec ?? {} };
  };
  const write = async (method: 'POST' | 'PUT', target: string, resourceVersion: string | undefined, spec: LeaseSpec): Promise<StoredLease> => {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
      spec,
    };
    const response = await client.request({ method, path: target, body, timeoutMs });
    if (response.status === 409) throw new LeaseConflictError(`lease ${namespace}/${name} was written by someone else first`);
    if (response.status < 200 || response.status > 299) throw errorOf({ method, path: target }, response);
    return toStored(response.body);
  };
  return {
    description: `${namespace}/${name}`,
    async get() {
      const response = await client.request({ method: 'GET', path, timeoutMs });
      if (response.status === 404) return undefined;
      if (response.status < 200 || response.status > 299) throw errorOf({ method: 'GET', path }, response);
      return toStored(response.body);
    },
    create: (spec) => write('POST', collection, undefined, spec),
    update: (resourceVersion, spec) => write('PUT', path, resourceVersion, spec),
  };
}
