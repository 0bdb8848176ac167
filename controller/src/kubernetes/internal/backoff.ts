// Delay arithmetic shared by informer restarts, the work queue and leader election: capped exponential
// backoff with jitter, and a token bucket for an overall rate. Pure apart from the clock passed in.

/** base·2^attempt capped at max; attempt 0 gives base. */
export function exponentialDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  // 2^attempt overflows to Infinity long after the cap; Math.min keeps it finite.
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
}

/**
 * The exponential delay spread over [delay/2, delay] ("equal jitter"): replicas restarting after the
 * same apiserver outage must not come back in lock step, yet none waits less than half its turn.
 */
export function jitteredDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const delay = exponentialDelayMs(attempt, baseMs, maxMs);
  return Math.round(delay / 2 + (delay / 2) * random());
}

/**
 * An overall rate: `ratePerSecond` tokens a second, at most `burst` saved up. take() says how long
 * to wait for a token and books it, so concurrent callers queue up instead of all waiting once.
 */
export class TokenBucket {
  readonly #ratePerSecond: number;
  readonly #burst: number;
  readonly #nowMs: () => number;
  #tokens: number;
  #updatedMs: number;

  constructor(options: { ratePerSecond: number; burst: number; nowMs?: () => number }) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) throw new RangeError('a token bucket needs ratePerSecond > 0 and burst >= 1');
    this.#ratePerSecond = options.ratePerSecond;
    this.#burst = options.burst;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#tokens = options.burst;
    this.#updatedMs = this.#nowMs();
  }

  /** Milliseconds until the token booked now may be used (0: at once). */
  reserve(): number {
    const now = this.#nowMs();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#updatedMs) / 1000) * this.#ratePerSecond);
    this.#updatedMs = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#ratePerSecond) * 1000);
  }

  /** Waits for a token; resolves early (without one) if the signal aborts, e.g. on shutdown. */
  async take(signal?: AbortSignal): Promise<void> {
    const waitMs = this.reserve();
    if (waitMs === 0 || signal?.aborted === true) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
