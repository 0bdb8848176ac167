// A work queue of keys in the manner of client-go's: a key is queued at most once and never handled
// by two workers at once; failures back off per key (exponential, capped) and overall (token bucket).

import { exponentialDelayMs, TokenBucket } from './backoff.ts';

export interface WorkQueueOptions {
  /** First retry delay of a failing key; doubles per failure up to maxDelayMs. Default 100 ms. */
  baseDelayMs?: number;
  /** Default 60 s. */
  maxDelayMs?: number;
  /** Retries of all keys together, per second and saved up (client-go: 10/s, burst 100). */
  retryRatePerSecond?: number;
  retryBurst?: number;
  /** Keys handled at once. Default 2. */
  workers?: number;
  /** Told of every failed reconcile before its key is put back. */
  onError?: (key: string, err: unknown) => void;
  /** Told the number of keys waiting (ready or delayed) when it changes. */
  onDepth?: (depth: number) => void;
  nowMs?: () => number;
}

/** What a reconcile may ask for besides success: to run again after a while (polling a condition). */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | undefined | void>;

interface Delayed {
  timer: NodeJS.Timeout;
  dueMs: number;
  /** A retry after a failure: new adds fold into it instead of cutting the backoff short. */
  retry: boolean;
}

export class WorkQueue {
  readonly #options: WorkQueueOptions;
  readonly #bucket: TokenBucket;
  readonly #ready: string[] = [];
  /** Keys that need a reconcile: in #ready, or to be put there when their reconcile in flight ends. */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  readonly #failures = new Map<string, number>();
  #wake: (() => void)[] = [];
  #workers: Promise<void>[] = [];
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#options = options;
    this.#bucket = new TokenBucket({
      ratePerSecond: options.retryRatePerSecond ?? 10,
      burst: options.retryBurst ?? 100,
      ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
    });
  }

  /** Queues `key` unless it is queued already or waiting out a failure's backoff. Never blocks. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key) || this.#delayed.get(key)?.retry === true) return;
    this.#dirty.add(key);
    if (!this.#processing.has(key)) {
      this.#ready.push(key);
      this.#wakeOne();
    }
    this.#reportDepth();
  }

  /** Queues `key` after `delayMs`; an earlier pending time for it wins. */
  addAfter(key: string, delayMs: number, retry = false): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const dueMs = this.#now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending !== undefined && pending.dueMs <= dueMs) return;
    clearTimeout(pending?.timer);
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { timer, dueMs, retry: retry || pending?.retry === true });
    this.#reportDepth();
  }

  /** Queues `key` after its backoff: base·2^failures (capped), and no sooner than the overall rate allows. */
  addRateLimited(key: string): void {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delayMs = Math.max(exponentialDelayMs(failures, this.#options.baseDelayMs ?? 100, this.#options.maxDelayMs ?? 60_000), this.#bucket.reserve());
    this.addAfter(key, delayMs, true);
  }

  /** The key succeeded: its next failure starts the backoff from the beginning. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Failures in a row so far. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Keys waiting, ready or delayed (a key in both counts once). */
  get depth(): number {
    let depth = this.#dirty.size;
    for (const key of this.#delayed.keys()) if (!this.#dirty.has(key)) depth++;
    return depth;
  }

  /** Starts the workers. A reconcile that throws puts its key back rate-limited; one that resolves forgets its failures. */
  run(reconcile: Reconcile): void {
    if (this.#workers.length > 0) throw new Error('the work queue is already running');
    const workers = Math.max(1, this.#options.workers ?? 2);
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work(reconcile));
  }

  /** Stops taking keys, drops those waiting, and resolves when the reconciles in flight have ended. */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#ready.length = 0;
    this.#dirty.clear();
    for (const wake of this.#wake.splice(0)) wake();
    await Promise.all(this.#workers);
    this.#reportDepth();
  }

  async #work(reconcile: Reconcile): Promise<void> {
    for (;;) {
      const key = await this.#next();
      if (key === undefined) return;
      try {
        const result = await reconcile(key);
        this.forget(key);
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        try {
          this.#options.onError?.(key, err);
        } catch {
          // A failing error reporter must not stop the worker.
        }
        // Adds that came in meanwhile fold into the retry: reconcile reads current state, so nothing
        // they asked for is lost, and a flood of events cannot cut a failing key's backoff short.
        this.#dirty.delete(key);
        this.addRateLimited(key);
      } finally {
        this.#done(key);
      }
    }
  }

  async #next(): Promise<string | undefined> {
    while (this.#ready.length === 0) {
      if (this.#shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
    if (this.#shuttingDown) return undefined;
    const key = this.#ready.shift() as string;
    this.#dirty.delete(key);
    this.#processing.add(key);
    this.#reportDepth();
    return key;
  }

  /** A key added while it was being handled goes back in line now. */
  #done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#ready.push(key);
      this.#wakeOne();
    }
  }

  #wakeOne(): void {
    this.#wake.shift()?.();
  }

  #reportDepth(): void {
    this.#options.onDepth?.(this.depth);
  }

  #now(): number {
    return (this.#options.nowMs ?? (() => performance.now()))();
  }
}
