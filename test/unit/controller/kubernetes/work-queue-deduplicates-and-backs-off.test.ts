// Pins the status work queue: a key is queued once however often it is added, never handled by two
// workers at once, and a failing key comes back after base·2^n (capped), with adds folded into the retry.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { exponentialDelayMs, jitteredDelayMs, TokenBucket } from '../../../../controller/src/kubernetes/internal/backoff.ts';
import { WorkQueue } from '../../../../controller/src/kubernetes/internal/work-queue.ts';

/** Lets the workers' promise chains run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('WorkQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('handles a key added many times before a worker takes it once', async () => {
    const queue = new WorkQueue({ workers: 2 });
    const handled: string[] = [];
    for (let i = 0; i < 5; i++) queue.add('payers/acme');
    queue.add('labs/labs');
    queue.add('payers/acme');
    expect(queue.depth).toBe(2);
    queue.run((key) => {
      handled.push(key);
      return Promise.resolve();
    });
    await settle();
    expect(handled).toEqual(['payers/acme', 'labs/labs']);
    expect(queue.depth).toBe(0);
    await queue.shutdown();
  });

  it('never runs one key twice at once, and runs it once more when it was added meanwhile', async () => {
    const queue = new WorkQueue({ workers: 3 });
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    queue.run(async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => (release = resolve));
      running--;
    });
    queue.add('payers/acme');
    await settle();
    expect(runs).toBe(1);
    // Three adds while it runs make one more run, after this one, not three and not in parallel.
    queue.add('payers/acme');
    queue.add('payers/acme');
    queue.add('payers/acme');
    await settle();
    expect(runs).toBe(1);
    release();
    await settle();
    expect(runs).toBe(2);
    release();
    await settle();
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
    await queue.shutdown();
  });

  it('retries a failing key after 100, 200, 400 ms... capped at the maximum, and forgets the count on success', async () => {
    const queue = new WorkQueue({ workers: 1, baseDelayMs: 100, maxDelayMs: 500, nowMs: () => Date.now() });
    const attemptsAt: number[] = [];
    let failuresLeft = 5;
    const start = Date.now();
    queue.run(() => {
      attemptsAt.push(Date.now() - start);
      return failuresLeft-- > 0 ? Promise.reject(new Error('apiserver said 503')) : Promise.resolve();
    });
    queue.add('payers/acme');
    await settle();
    await vi.advanceTimersByTimeAsync(5_000);
    // Failures 1..5 wait 100, 200, 400, 500 (cap), 500; the sixth attempt succeeds.
    expect(attemptsAt).toEqual([0, 100, 300, 700, 1200, 1700]);
    expect(queue.failures('payers/acme')).toBe(0);

    failuresLeft = 1;
    queue.add('payers/acme');
    await vi.advanceTimersByTimeAsync(1_000);
    // A new failure starts again from the base delay.
    expect(attemptsAt.slice(6).map((t) => t - attemptsAt[6]!)).toEqual([0, 100]);
    await queue.shutdown();
  });

  it('folds adds that come during a backoff into the retry instead of cutting it short', async () => {
    const queue = new WorkQueue({ workers: 1, baseDelayMs: 1_000, nowMs: () => Date.now() });
    const attemptsAt: number[] = [];
    const start = Date.now();
    let fail = true;
    queue.run(() => {
      attemptsAt.push(Date.now() - start);
      if (!fail) return Promise.resolve();
      fail = false;
      return Promise.reject(new Error('409 Conflict'));
    });
    queue.add('payers/acme');
    await settle();
    for (let t = 0; t < 900; t += 100) {
      await vi.advanceTimersByTimeAsync(100);
      queue.add('payers/acme');
    }
    expect(attemptsAt).toEqual([0]);
    await vi.advanceTimersByTimeAsync(200);
    expect(attemptsAt).toEqual([0, 1000]);
    await queue.shutdown();
  });

  it('requeues after the delay a reconcile asks for', async () => {
    const queue = new WorkQueue({ workers: 1 });
    let runs = 0;
    queue.run(() => {
      runs++;
      return Promise.resolve(runs === 1 ? { requeueAfterMs: 250 } : undefined);
    });
    queue.add('payers/acme');
    await settle();
    await vi.advanceTimersByTimeAsync(249);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(2);
    await queue.shutdown();
  });

  it('shutdown drops waiting keys and resolves once the reconcile in flight ends', async () => {
    const queue = new WorkQueue({ workers: 1, baseDelayMs: 10_000 });
    let finish: () => void = () => undefined;
    const seen: string[] = [];
    queue.run(async (key) => {
      seen.push(key);
      if (key === 'a/slow') await new Promise<void>((resolve) => (finish = resolve));
      else throw new Error('fails, waits 10 s');
    });
    queue.add('a/failing');
    await settle();
    queue.add('a/slow');
    queue.add('a/waiting');
    await settle();
    let done = false;
    const stopped = queue.shutdown().then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    finish();
    await stopped;
    expect(seen).toEqual(['a/failing', 'a/slow']);
    queue.add('a/late');
    expect(queue.depth).toBe(0);
  });
});

describe('backoff arithmetic', () => {
  it('doubles from the base up to the cap', () => {
    expect([0, 1, 2, 3, 4, 50].map((n) => exponentialDelayMs(n, 1_000, 30_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
  });

  it('jitters between half and all of the delay', () => {
    expect(jitteredDelayMs(3, 1_000, 30_000, () => 0)).toBe(4_000);
    expect(jitteredDelayMs(3, 1_000, 30_000, () => 1)).toBe(8_000);
    expect(jitteredDelayMs(9, 1_000, 30_000, () => 0.5)).toBe(22_500);
  });

  it('lets a burst through, then spaces tokens at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 3, nowMs: () => now });
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 0, 100, 200]);
    now = 1_000;
    // Ten tokens came back in a second, but only `burst` are saved, minus the two borrowed.
    expect([bucket.reserve(), bucket.reserve()]).toEqual([0, 0]);
  });
});
