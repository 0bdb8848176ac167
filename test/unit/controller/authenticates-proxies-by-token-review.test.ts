// The TokenReview authenticator: a bearer token is required, the apiserver's verdict decides, the
// namespace comes from the service-account username, verdicts are cached by token hash, one review
// per token runs at a time, and at most maxConcurrentReviews run at once (the rest wait in turn, up
// to a bound).

import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { tokenReviewAuthenticator, type TokenReviewResult } from '../../../controller/src/auth/index.ts';
import type { DiscoveryCall } from '../../../controller/src/discovery/identity.ts';
import { servedNamespace } from '../../../controller/src/discovery/identity.ts';

const claim = { nodeId: 'p1', namespace: 'payers', labels: {}, proxyVersion: 't' };

function callWith(authorization?: string): DiscoveryCall {
  const metadata = new grpc.Metadata();
  if (authorization !== undefined) metadata.set('authorization', authorization);
  return { metadata } as DiscoveryCall;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
}

describe('tokenReviewAuthenticator', () => {
  it('serves the namespace of the service account the token belongs to', async () => {
    const seen: [string, string[]][] = [];
    const auth = tokenReviewAuthenticator(async (token, audiences) => {
      seen.push([token, audiences]);
      return { authenticated: true, username: 'system:serviceaccount:payers:acme-proxy', audiences: ['fhirmesh'] };
    });
    expect(await auth(callWith('Bearer tok-1'), claim)).toEqual({ namespace: 'payers' });
    expect(seen).toEqual([['tok-1', ['fhirmesh']]]);
  });

  it('refuses a call without a bearer token', async () => {
    const auth = tokenReviewAuthenticator(async () => ({ authenticated: true }));
    expect(await codeOf(Promise.resolve(auth(callWith(), claim)))).toMatch(/^FHIRMESH_UNAUTHENTICATED: no bearer token/);
    expect(await codeOf(Promise.resolve(auth(callWith('Basic abc'), claim)))).toMatch(/^FHIRMESH_UNAUTHENTICATED/);
  });

  it.each<[string, TokenReviewResult, RegExp]>([
    ['an expired token', { authenticated: false, error: 'token has expired' }, /token refused: token has expired/],
    ['another audience', { authenticated: true, username: 'system:serviceaccount:a:b', audiences: ['vault'] }, /not for audience fhirmesh/],
    ['a user, not a service account', { authenticated: true, username: 'alice', audiences: ['fhirmesh'] }, /does not belong to a service account/],
  ])('refuses %s', async (_what, verdict, message) => {
    const auth = tokenReviewAuthenticator(async () => verdict);
    expect(await codeOf(Promise.resolve(auth(callWith('Bearer t'), claim)))).toMatch(message);
  });

  it('tells the proxy to retry (UNAVAILABLE), not that its token is bad, when the review itself fails', async () => {
    let reviews = 0;
    const auth = tokenReviewAuthenticator(async () => {
      reviews++;
      throw new Error('POST /apis/authentication.k8s.io/v1/tokenreviews: no answer');
    });
    expect(await codeOf(Promise.resolve(auth(callWith('Bearer t'), claim)))).toBe(
      'FHIRMESH_AUTHENTICATION_UNAVAILABLE: the controller could not check the token (TokenReview failed): retry shortly',
    );
    // Nothing is cached from a failure: the next attempt asks again.
    await codeOf(Promise.resolve(auth(callWith('Bearer t'), claim)));
    expect(reviews).toBe(2);
  });

  it('reuses a verdict within its TTL and asks again after', async () => {
    let now = 1_000;
    let reviews = 0;
    const auth = tokenReviewAuthenticator(
      async () => {
        reviews++;
        return { authenticated: true, username: 'system:serviceaccount:payers:p' };
      },
      { cacheTtlMs: 100, now: () => now },
    );
    await auth(callWith('Bearer same'), claim);
    await auth(callWith('Bearer same'), claim);
    expect(reviews).toBe(1);
    now += 101;
    await auth(callWith('Bearer same'), claim);
    expect(reviews).toBe(2);
  });

  it('serves the authenticated namespace, never the claimed one', () => {
    expect(servedNamespace({ ...claim, namespace: 'other' }, { namespace: 'payers' })).toBe('payers');
    expect(servedNamespace(claim, {})).toBe('payers');
  });

  it('reviews a token once however many streams present it at the same time', async () => {
    let reviews = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const auth = tokenReviewAuthenticator(async () => {
      reviews++;
      await gate;
      return { authenticated: true, username: 'system:serviceaccount:payers:acme-proxy' };
    });
    const streams = Array.from({ length: 200 }, () => Promise.resolve(auth(callWith('Bearer shared'), claim)));
    release();
    expect(await Promise.all(streams)).toEqual(Array.from({ length: 200 }, () => ({ namespace: 'payers' })));
    expect(reviews).toBe(1);
  });

  it('keeps at most maxConcurrentReviews in flight, serves the rest in turn, and refuses past the queue bound', async () => {
    let active = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const auth = tokenReviewAuthenticator(
      async (token) => {
        active++;
        most = Math.max(most, active);
        await new Promise<void>((resolve) => releases.push(resolve));
        active--;
        return { authenticated: true, username: `system:serviceaccount:ns-${token}:proxy` };
      },
      { maxConcurrentReviews: 4, maxQueuedReviews: 10 },
    );
    const streams = Array.from({ length: 20 }, (_, i) => codeOf(Promise.resolve(auth(callWith(`Bearer t${i}`), claim))));
    // Let the first four start; drain the reviews as they come, so the queued ones run in turn.
    const drain = setInterval(() => releases.shift()?.(), 1);
    const outcomes = await Promise.all(streams);
    clearInterval(drain);
    expect(most).toBe(4);
    expect(outcomes.filter((o) => o === 'resolved')).toHaveLength(14);
    expect(outcomes.slice(14)).toEqual(Array.from({ length: 6 }, () => expect.stringMatching(/^FHIRMESH_AUTHENTICATION_UNAVAILABLE: 10 proxies are already waiting/)));
  });
});
