// Service-account tokens from the TokenRequest API, as a kubelet would mount them: the way tests get
// tokens for fhirmesh components, since no kube-controller-manager runs to create token Secrets.

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
