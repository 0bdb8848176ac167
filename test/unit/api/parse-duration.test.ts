// Pins the duration syntax of FhirRoute timeouts: a whole number with ms, s or m, read as milliseconds.
import { describe, expect, it } from 'vitest';
import { parseDurationMs } from '../../../api/index.ts';

describe('parseDurationMs', () => {
  it.each([
    ['250ms', 250],
    ['2s', 2_000],
    ['1m', 60_000],
    ['0s', 0],
    ['007s', 7_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', '2', '1.5s', '-1s', '2h', '2 s', ' 2s', '2S', 's', '1m30s'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it('refuses a duration too large to count exactly in milliseconds', () => {
    expect(parseDurationMs('9007199254740991ms')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseDurationMs('9007199254740992ms')).toBeUndefined();
    expect(parseDurationMs('999999999999999m')).toBeUndefined();
  });
});
