// Reads the FhirRoute duration syntax (`250ms`, `2s`, `1m`) as milliseconds.
// The accepted syntax is the CRD's duration pattern; a test keeps the two the same.

/** The CRD's `timeouts.*` pattern, as a string so the test can compare it with the CRD's. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m)$';

const DURATION = new RegExp(DURATION_PATTERN);

/**
 * Milliseconds for a duration such as `250ms`, `2s` or `1m`; undefined when the text is not one
 * or is too large to count exactly in milliseconds.
 */
export function parseDurationMs(text: string): number | undefined {
  const unit = DURATION.exec(text)?.[1];
  if (unit === undefined) return undefined;
  const perUnit = unit === 'm' ? 60_000 : unit === 's' ? 1_000 : 1;
  const ms = Number(text.slice(0, -unit.length)) * perUnit;
  return Number.isSafeInteger(ms) ? ms : undefined;
}
