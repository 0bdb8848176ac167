// Original file: api/fhirmesh/v1/discovery.proto


export interface ProxyIdentity {
  /**
   * Unique per proxy instance: the pod name in Kubernetes.
   */
  'nodeId'?: (string);
  /**
   * The namespace whose routes the proxy serves (until authenticated identity replaces the claim).
   */
  'namespace'?: (string);
  'labels'?: ({[key: string]: string});
  'proxyVersion'?: (string);
}

export interface ProxyIdentity__Output {
  /**
   * Unique per proxy instance: the pod name in Kubernetes.
   */
  'nodeId': (string);
  /**
   * The namespace whose routes the proxy serves (until authenticated identity replaces the claim).
   */
  'namespace': (string);
  'labels': ({[key: string]: string});
  'proxyVersion': (string);
}
