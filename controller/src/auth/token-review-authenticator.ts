// Kubernetes mode's authenticate hook: the proxy's projected service-account token (audience
// fhirmesh) is checked with TokenReview, and the stream is served the namespace the token proves.

import { createHash } from 'node:crypto';
import type { Authenticator } from '../discovery/identity.ts';
import { ControllerError } from '../errors.ts';

export const PROXY_TOKEN_AUDIENCE = 'fhirmesh';

/** What a TokenReview said; `error` is the apiserver's reason when not authenticated. */
export interface TokenReviewResult {
  authenticated: boolean;
  username?: string;
  audiences?: string[];
  error?: string;
}

/** POSTs a TokenReview; supplied by the Kubernetes layer so this module knows no HTTP client. */
export type TokenReviewer = (token: string, audiences: string[]) => Promise<TokenReviewResult>;

const SERVICE_ACCOUNT = /^system:serviceaccount:([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?):([^:]+)$/;

export interface TokenReviewAuthenticatorOptions {
  audience?: string;
  /** How long a verdict is reused for the same token: reconnect storms must not flood the apiserver. */
  cacheTtlMs?: number;
  /**
   * TokenReviews in flight at once (default 32). A reconnect wave of thousands of proxies must not
   * open thousands of requests to the apiserver: the rest wait their turn, in order.
   */
  maxConcurrentReviews?: number;
  /**
   * Streams that may wait for a review slot (default 10,000); past it a stream is told to retry
   * (UNAVAILABLE) at once, so a slow apiserver cannot make the controller hold every reconnect.
   */
  maxQueuedReviews?: number;
  now?: () => number;
}


export function tokenReviewAuthenticator(review: TokenReviewer, options: TokenReviewAuthenticatorOptions = {}): Authenticator {
  const audience = options.audience ?? PROXY_TOKEN_AUDIENCE;
  const ttl = options.cacheTtlMs ?? 30_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { namespace: string; until: number }>();
  // The review in flight per token hash: every stream that presents the token meanwhile awaits it.
  const inflight = new Map<string, Promise<{ namespace: string }>>();
  const maxActive = Math.max(1, options.maxConcurrentReviews ?? 32);
  const maxQueued = Math.max(0, options.maxQueuedReviews ?? 10_000);
  const queue: (() => void)[] = [];
  let active = 0;

  return async (call) => {
    const header = call.metadata.get('authorization')[0];
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (match === null) {
      throw new ControllerError(
        'FHIRMESH_UNAUTHENTICATED',
        `no bearer token: mount a projected service-account token with audience ${audience} and pass it with --token-file`,
      );
    }
    const token = match[1] as string;
    // Keyed by a hash: the cache never holds a usable token.
    const key = createHash('sha256').update(token).digest('hex');
    const cached = cache.get(key);
    if (cached !== undefined && cached.until > now()) return { namespace: cached.namespace };

    // One review per token at a time: the streams of one proxy (or of a wave sharing a token) wait for it.
    let pending = inflight.get(key);
    if (pending === undefined) {
      pending = reviewInTurn(token, key).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  };

  async function reviewInTurn(token: string, key: string): Promise<{ namespace: string }> {
    if (active >= maxActive) {
      if (queue.length >= maxQueued) {
        throw new ControllerError('FHIRMESH_AUTHENTICATION_UNAVAILABLE', `${queue.length} proxies are already waiting for a TokenReview: retry shortly`);
      }
      await new Promise<void>((resolve) => queue.push(resolve));
    } else {
      active++;
    }
    try {
      return await reviewOnce(token, key);
    } finally {
      // The slot passes to the next waiter (active stays), or is given back.
      const next = queue.shift();
      if (next === undefined) active--;
      else next();
    }
  }

  async function reviewOnce(token: string, key: string): Promise<{ namespace: string }> {
    let result: TokenReviewResult;
    try {
      result = await review(token, [audience]);
    } catch (err) {
      // The apiserver did not answer (or refused the controller): the token may well be good, so the
      // proxy is told to retry (UNAVAILABLE), not that its credentials are bad. The reviewer logs why.
      throw new ControllerError('FHIRMESH_AUTHENTICATION_UNAVAILABLE', 'the controller could not check the token (TokenReview failed): retry shortly', { cause: err });
    }
    if (!result.authenticated) {
      throw new ControllerError('FHIRMESH_UNAUTHENTICATED', `token refused: ${result.error ?? 'not authenticated'}; use a current token with audience ${audience}`);
    }
    if (result.audiences !== undefined && !result.audiences.includes(audience)) {
      throw new ControllerError('FHIRMESH_UNAUTHENTICATED', `token is not for audience ${audience}`);
    }
    const sa = SERVICE_ACCOUNT.exec(result.username ?? '');
    if (sa === null) {
      throw new ControllerError('FHIRMESH_UNAUTHENTICATED', 'the token does not belong to a service account: proxies authenticate as their pod\'s service account');
    }
    const namespace = sa[1] as string;
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { namespace, until: now() + ttl });
    return { namespace };
  }
}
