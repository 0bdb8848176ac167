// The TokenReviewer of Kubernetes mode: POSTs an authentication.k8s.io/v1 TokenReview through the
// shared KubeClient and hands back the apiserver's verdict, with its status.error as the reason.

import type { Logger } from '../../../../runtime/index.ts';
import type { TokenReviewer, TokenReviewResult } from '../../auth/index.ts';
import { KubeApiError, type KubeClient } from './kube-client.ts';

const TOKEN_REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string };
  audiences?: string[];
  error?: string;
}

/**
 * A verdict for every answer of the apiserver; throws (the proxy is told to retry) only when there is
 * none: no answer, or the controller may not create TokenReviews, which is logged with the fix.
 */
export function kubeTokenReviewer(client: KubeClient, logger: Logger, options: { timeoutMs?: number } = {}): TokenReviewer {
  return async (token, audiences) => {
    let review: { status?: TokenReviewStatus };
    try {
      review = await client.json<{ status?: TokenReviewStatus }>({
        method: 'POST',
        path: TOKEN_REVIEWS,
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
        timeoutMs: options.timeoutMs ?? 10_000,
      });
    } catch (err) {
      const forbidden = err instanceof KubeApiError && err.status === 403;
      logger.log('error', 'cannot review a proxy token; proxies cannot connect until TokenReview works', {
        error: err instanceof Error ? err.message : String(err),
        ...(forbidden ? { fix: 'grant create on tokenreviews.authentication.k8s.io (charts/fhirmesh/files/rbac/token-review-rules.yaml)' } : {}),
      });
      throw err;
    }
    const status = review.status ?? {};
    const result: TokenReviewResult = { authenticated: status.authenticated === true };
    if (status.user?.username !== undefined) result.username = status.user.username;
    if (status.audiences !== undefined) result.audiences = status.audiences;
    if (status.error !== undefined && status.error !== '') result.error = status.error;
    return result;
  };
}
