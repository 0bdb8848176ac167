// Pins leader election over a Lease held in memory the way the apiserver holds it (resourceVersion
// bumps, 409 on a stale write): who may take the Lease when, what each write says, step-down, release.

import { describe, expect, it } from 'vitest';
import { LeaderElector, LeaseConflictError, type LeaseSpec, type LeaseStore, type StoredLease } from '../../../../controller/src/kubernetes/internal/leader-election.ts';
import { silentLogger } from '../../../../runtime/index.ts';

/** One Lease with optimistic concurrency, as the apiserver keeps it; `failing` makes every call throw. */
class MemoryLeaseStore implements LeaseStore {
  readonly description = 'fhirmesh-system/fhirmesh-controller';
  lease: StoredLease | undefined;
  writes: { op: 'create' | 'update'; spec: LeaseSpec }[] = [];
  failing = false;
  #version = 0;

  get(): Promise<StoredLease | undefined> {
    return this.#answer(() => (this.lease === undefined ? undefined : structuredClone(this.lease)));
  }

  create(spec: LeaseSpec): Promise<StoredLease> {
    return this.#answer(() => {
      if (this.lease !== undefined) throw new LeaseConflictError('exists');
      return this.#write('create', spec);
    });
  }

  update(resourceVersion: string, spec: LeaseSpec): Promise<StoredLease> {
    return this.#answer(() => {
      if (this.lease?.resourceVersion !== resourceVersion) throw new LeaseConflictError('stale');
      return this.#write('update', spec);
    });
  }

  /** Another replica renews: what followers see as a live leader. */
  renewBy(holder: string): void {
    this.lease = { resourceVersion: String(++this.#version), spec: { ...this.lease?.spec, holderIdentity: holder } };
  }

  #write(op: 'create' | 'update', spec: LeaseSpec): StoredLease {
    this.writes.push({ op, spec });
    this.lease = { resourceVersion: String(++this.#version), spec: { ...spec } };
    return structuredClone(this.lease);
  }

  /** Like the apiserver: answers asynchronously, and not at all while `failing`. */
  #answer<T>(body: () => T): Promise<T> {
    try {
      if (this.failing) throw new Error('connect ECONNREFUSED');
      return Promise.resolve(body());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

function elector(store: LeaseStore, identity: string, clock: { wall: number; mono: number }, timing = TIMING): LeaderElector {
  return new LeaderElector({ store, identity, timing, logger: silentLogger(), wallClockMs: () => clock.wall, monotonicMs: () => clock.mono, random: () => 0 });
}

describe('LeaderElector.tryAcquireOrRenew', () => {
  it('creates an absent Lease with MicroTime stamps and the lease duration in whole seconds', async () => {
    const store = new MemoryLeaseStore();
    const clock = { wall: Date.parse('2026-03-01T12:00:00.123Z'), mono: 0 };
    expect(await elector(store, 'ctrl-a', clock).tryAcquireOrRenew()).toEqual({ holding: true, holder: 'ctrl-a' });
    expect(store.writes).toEqual([
      {
        op: 'create',
        spec: {
          holderIdentity: 'ctrl-a',
          leaseDurationSeconds: 3,
          acquireTime: '2026-03-01T12:00:00.123000Z',
          renewTime: '2026-03-01T12:00:00.123000Z',
          leaseTransitions: 0,
        },
      },
    ]);
  });

  it('renews its own Lease: new renewTime, same acquireTime and transitions', async () => {
    const store = new MemoryLeaseStore();
    const clock = { wall: Date.parse('2026-03-01T12:00:00Z'), mono: 0 };
    const a = elector(store, 'ctrl-a', clock);
    await a.tryAcquireOrRenew();
    clock.wall += 1_000;
    clock.mono += 1_000;
    expect(await a.tryAcquireOrRenew()).toEqual({ holding: true, holder: 'ctrl-a' });
    expect(store.writes[1]).toEqual({
      op: 'update',
      spec: { holderIdentity: 'ctrl-a', leaseDurationSeconds: 3, acquireTime: '2026-03-01T12:00:00.000000Z', renewTime: '2026-03-01T12:00:01.000000Z', leaseTransitions: 0 },
    });
  });

  it('leaves a Lease it sees renewed, and takes it over once it has not changed for the lease duration', async () => {
    const store = new MemoryLeaseStore();
    const clockA = { wall: 0, mono: 0 };
    await elector(store, 'ctrl-a', clockA).tryAcquireOrRenew();

    const clockB = { wall: 10_000, mono: 50_000 };
    const b = elector(store, 'ctrl-b', clockB);
    expect(await b.tryAcquireOrRenew()).toEqual({ holding: false, holder: 'ctrl-a' });
    // ctrl-a renews at 2 s: b's wait starts again from when *it* saw the change.
    clockB.mono += 2_000;
    store.renewBy('ctrl-a');
    expect(await b.tryAcquireOrRenew()).toEqual({ holding: false, holder: 'ctrl-a' });
    clockB.mono += 2_999;
    expect(await b.tryAcquireOrRenew()).toEqual({ holding: false, holder: 'ctrl-a' });
    clockB.mono += 1;
    clockB.wall = 20_000;
    expect(await b.tryAcquireOrRenew()).toEqual({ holding: true, holder: 'ctrl-b' });
    expect(store.writes.at(-1)).toEqual({
      op: 'update',
      spec: { holderIdentity: 'ctrl-b', leaseDurationSeconds: 3, acquireTime: '1970-01-01T00:00:20.000000Z', renewTime: '1970-01-01T00:00:20.000000Z', leaseTransitions: 1 },
    });
  });

  it('takes a released Lease (empty holder) at once', async () => {
    const store = new MemoryLeaseStore();
    store.lease = { resourceVersion: '7', spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 4 } };
    const b = elector(store, 'ctrl-b', { wall: 0, mono: 0 });
    expect(await b.tryAcquireOrRenew()).toEqual({ holding: true, holder: 'ctrl-b' });
    expect(store.lease.spec.leaseTransitions).toBe(5);
  });

  it('loses a race to a writer that updated the Lease first (409)', async () => {
    const store = new MemoryLeaseStore();
    store.lease = { resourceVersion: '7', spec: { holderIdentity: '', leaseDurationSeconds: 1 } };
    const racing: LeaseStore = {
      description: store.description,
      get: async () => {
        const seen = await store.get();
        store.renewBy('ctrl-c');
        return seen;
      },
      create: (spec) => store.create(spec),
      update: (rv, spec) => store.update(rv, spec),
    };
    expect(await elector(racing, 'ctrl-b', { wall: 0, mono: 0 }).tryAcquireOrRenew()).toEqual({ holding: false, holder: '' });
    expect(store.lease?.spec.holderIdentity).toBe('ctrl-c');
  });

  it('refuses timings where a leader could still write after a follower took over', () => {
    expect(() => elector(new MemoryLeaseStore(), 'a', { wall: 0, mono: 0 }, { leaseDurationMs: 2_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 })).toThrow(
      'lease duration > renew deadline > retry period',
    );
  });
});

describe('LeaderElector.start/stop', () => {
  const fast = { leaseDurationMs: 600, renewDeadlineMs: 300, retryPeriodMs: 50 };
  const leads = (elector: LeaderElector, leading = true): Promise<void> => expect.poll(() => elector.isLeader(), { timeout: 3_000, interval: 10 }).toBe(leading);
  /** `store` as one replica reaches it, counting that replica's reads: each read is one try at the Lease. */
  const countingReads = (store: LeaseStore): LeaseStore & { reads: number } => {
    const seen = {
      reads: 0,
      description: store.description,
      get: () => {
        seen.reads++;
        return store.get();
      },
      create: (spec: LeaseSpec) => store.create(spec),
      update: (resourceVersion: string, spec: LeaseSpec) => store.update(resourceVersion, spec),
    };
    return seen;
  };

  it('leads, steps down when it cannot renew within the renew deadline, and leads again when it can', async () => {
    const store = new MemoryLeaseStore();
    const a = new LeaderElector({ store, identity: 'ctrl-a', timing: fast, logger: silentLogger() });
    const changes: boolean[] = [];
    a.onChange((leading) => changes.push(leading));
    a.start();
    await leads(a);
    store.failing = true;
    const failedAt = Date.now();
    await leads(a, false);
    // Stepped down after the renew deadline, before the lease duration would let a follower in.
    expect(Date.now() - failedAt).toBeLessThan(fast.leaseDurationMs);
    store.failing = false;
    await leads(a);
    expect(changes).toEqual([true, false, true]);
    await a.stop();
  });

  it('hands over between two replicas: one leads, and when it stops and releases, the other leads', async () => {
    const store = new MemoryLeaseStore();
    const a = new LeaderElector({ store, identity: 'ctrl-a', timing: fast, logger: silentLogger() });
    const seenByB = countingReads(store);
    const b = new LeaderElector({ store: seenByB, identity: 'ctrl-b', timing: fast, logger: silentLogger() });
    a.start();
    await leads(a);
    b.start();
    // b has tried a few times (every retry period) and found the Lease held and renewed.
    await expect.poll(() => seenByB.reads, { timeout: 3_000, interval: 10 }).toBeGreaterThanOrEqual(3);
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);

    const stoppedAt = Date.now();
    await a.stop();
    expect(store.writes.at(-1)?.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    await leads(b);
    // Released, so no wait for expiry: the next try (retry period + jitter) takes it.
    expect(Date.now() - stoppedAt).toBeLessThan(fast.leaseDurationMs);
    expect(a.isLeader()).toBe(false);
    await b.stop();
  });
});
