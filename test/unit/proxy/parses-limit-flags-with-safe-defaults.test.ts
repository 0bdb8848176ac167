// The proxy's limits: defaults a sidecar starts with, each overridable by a flag or its FHIRMESH_*
// variable, in the unit the flag names (seconds become ms), refused with one line when not positive.

import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../proxy/src/config/limits.ts';
import { FlagError, parseProxyFlags, type ProxyConfig } from '../../../proxy/src/config/flags.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}): ProxyConfig => parseProxyFlags(['--routes', 'routes.yaml', ...argv], env) as ProxyConfig;

describe('limit flags', () => {
  it('starts from the documented defaults', () => {
    expect(parse([]).limits).toEqual({
      maxHeaderBytes: 16_384,
      maxHeaderCount: 100,
      maxUrlBytes: 8_192,
      headersTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      maxConcurrentPerDestination: 1_024,
    });
    expect(parse([]).limits).toEqual(DEFAULT_LIMITS);
  });

  it('takes each limit from its flag or its variable, seconds as milliseconds', () => {
    expect(
      parse(['--max-header-bytes', '32768', '--max-headers', '50', '--max-url-bytes', '4096', '--headers-timeout', '2.5', '--keep-alive-timeout', '5', '--max-concurrent-per-destination', '64']).limits,
    ).toEqual({ maxHeaderBytes: 32_768, maxHeaderCount: 50, maxUrlBytes: 4_096, headersTimeoutMs: 2_500, keepAliveTimeoutMs: 5_000, maxConcurrentPerDestination: 64 });
    expect(parse([], { FHIRMESH_MAX_CONCURRENT_PER_DESTINATION: '8', FHIRMESH_HEADERS_TIMEOUT: '1' }).limits).toMatchObject({ maxConcurrentPerDestination: 8, headersTimeoutMs: 1_000 });
  });

  it.each([
    [['--max-headers', '0'], "--max-headers '0' must be a positive whole number"],
    [['--max-url-bytes', '1.5'], "--max-url-bytes '1.5' must be a positive whole number"],
    [['--headers-timeout', 'soon'], "--headers-timeout 'soon' must be a positive number of seconds"],
  ])('refuses %j with one line that says what to give', (argv, message) => {
    expect(() => parse(argv)).toThrow(FlagError);
    expect(() => parse(argv)).toThrow(message);
  });

  it('names the variable when the bad value came from it', () => {
    expect(() => parse([], { FHIRMESH_MAX_HEADERS: '-3' })).toThrow("FHIRMESH_MAX_HEADERS '-3' must be a positive whole number");
  });
});
