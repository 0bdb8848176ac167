// The one way a test waits for a condition that has no event: `check` is retried until it returns
// without throwing; its value is returned, or on timeout its last error is thrown. Never a fixed sleep.
// For a single value, `await expect.poll(() => value).toBe(…)` says the same thing more directly.

import { vi } from 'vitest';

/** Retries `check` every `intervalMs` until it passes; the timeout bounds a failing test, not a passing one. */
export function eventually<T>(check: () => T | Promise<T>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  return vi.waitFor(check, { timeout: timeoutMs, interval: intervalMs });
}
