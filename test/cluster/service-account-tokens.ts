// Service-account tokens from the TokenRequest API, as a kubelet would mount them (no controller-manager
// makes token Secrets here), and expired copies re-signed with the apiserver's own key.

import crypto from 'node:crypto';
import { KubeHttpError, type KubeHttp } from './kube-http.ts';

export interface ServiceAccountTokenOptions {
  namespace?: string;
  /** Default: the apiserver's own audiences (its issuer and --api-audiences). */
  audiences?: string[];
  /** At least 600 (kube-apiserver's minimum); default 3600. */
  expirationSeconds?: number;
}

/** Creates the ServiceAccount when missing, then returns a signed token for it. */
export async function createServiceAccountToken(
  kube: KubeHttp,
  serviceAccount: string,
  options: ServiceAccountTokenOptions = {},
): Promise<string> {
  const accounts = `/api/v1/namespaces/${options.namespace ?? 'default'}/serviceaccounts`;
  const created = await kube.request('POST', accounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount } });
  if (created.status !== 201 && created.status !== 409) throw new KubeHttpError('POST', accounts, created);
  const tokenRequest = await kube.json<{ status: { token: string } }>('POST', `${accounts}/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { audiences: options.audiences ?? null, expirationSeconds: options.expirationSeconds ?? 3600 },
  });
  return tokenRequest.status.token;
}

/**
 * The same token re-signed with kube-apiserver's own signing key, with `exp` (and `iat`, `nbf`) moved
 * into the past: a genuine service-account token that has expired. TokenRequest cannot make one (its
 * minimum lifetime is 10 minutes), and a token signed with any other key would prove something else.
 */
export function expiredCopyOf(token: string, signingKeyPem: string, /** Negative: a copy still valid for that long (a control). */ expiredSecondsAgo = 3_600): string {
  const [header, payload] = token.split('.');
  if (header === undefined || payload === undefined) throw new Error('not a JWT: expected header.payload.signature');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  const exp = now - expiredSecondsAgo;
  // Lifetime as TokenRequest gave it, ending in the past; warnafter (extended tokens) would muddy the verdict.
  const lifetime = Number(claims['exp']) - Number(claims['iat']);
  const expired: Record<string, unknown> = { ...claims, iat: exp - lifetime, nbf: exp - lifetime, exp };
  const kubernetes = expired['kubernetes.io'] as Record<string, unknown> | undefined;
  if (kubernetes !== undefined) delete kubernetes['warnafter'];
  const signed = `${header}.${Buffer.from(JSON.stringify(expired)).toString('base64url')}`;
  const signature = crypto.sign('sha256', Buffer.from(signed), signingKeyPem).toString('base64url');
  return `${signed}.${signature}`;
}

/** The claims of a JWT, unverified: for assertions on what a token says. */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
