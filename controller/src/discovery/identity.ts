// Who is on the other end of a stream: the identity a proxy claims in its first message, checked
// for shape, and the authenticate hook that decides its namespace (claims standalone; TokenReview in Kubernetes).

import type * as grpc from '@grpc/grpc-js';
import type { DiscoveryRequest__Output, DiscoveryResponse, ProxyIdentity__Output } from '../../../api/discovery/index.ts';
import { ControllerError } from '../errors.ts';

export interface ProxyIdentityClaim {
  nodeId: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  proxyVersion: string;
}

/** What authentication established; a field left out means the claim stands. */
export interface AuthenticatedProxy {
  namespace?: string;
}

export type DiscoveryCall = grpc.ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>;

/**
 * Decides what a stream may see. Throw ControllerError FHIRMESH_UNAUTHENTICATED when the caller
 * cannot be identified. Standalone trusts the claims; Kubernetes mode reviews the projected
 * service-account token in the call's metadata and returns its namespace (auth/).
 */
export type Authenticator = (call: DiscoveryCall, claimed: ProxyIdentityClaim) => Promise<AuthenticatedProxy> | AuthenticatedProxy;

/** Standalone: the claim is trusted; streams are meant for loopback or a trusted network. */
export const trustIdentityClaims: Authenticator = () => ({});

// Namespaces are DNS labels (Kubernetes' rule). Node ids are pod names in a cluster, but a proxy
// outside one may default to a host name, so upper case and '_' are let through: the id is only
// shown (logs, status), never used as a name in Kubernetes.
const NODE_ID = /^[A-Za-z0-9]([-A-Za-z0-9._]{0,251}[A-Za-z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The claim of a first message, or FHIRMESH_IDENTITY_INVALID saying what to fix. */
export function identityClaimOf(first: DiscoveryRequest__Output): ProxyIdentityClaim {
  const identity: ProxyIdentity__Output | null = first.identity;
  if (identity === null) {
    throw new ControllerError('FHIRMESH_IDENTITY_INVALID', 'the first DiscoveryRequest must carry identity (node_id and namespace)');
  }
  if (!NODE_ID.test(identity.nodeId)) {
    throw new ControllerError(
      'FHIRMESH_IDENTITY_INVALID',
      `identity.node_id '${identity.nodeId.slice(0, 300)}' must be 1-253 letters, digits, '-', '.' or '_', starting and ending with a letter or digit (the pod name in a cluster)`,
    );
  }
  if (!NAMESPACE.test(identity.namespace)) {
    throw new ControllerError(
      'FHIRMESH_IDENTITY_INVALID',
      `identity.namespace '${identity.namespace.slice(0, 100)}' must be a namespace name (a DNS label: lowercase letters, digits and '-', at most 63)`,
    );
  }
  return { nodeId: identity.nodeId, namespace: identity.namespace, labels: { ...identity.labels }, proxyVersion: identity.proxyVersion };
}

/**
 * The namespace a stream is served: the authenticated one when there is one, whatever the proxy
 * claims. A proxy claiming another namespace gets its own routes, never the claimed ones.
 */
export function servedNamespace(claimed: ProxyIdentityClaim, authenticated: AuthenticatedProxy): string {
  return authenticated.namespace ?? claimed.namespace;
}
