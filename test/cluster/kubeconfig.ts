// Writes the admin kubeconfig for the test control plane: the apiserver's self-generated certificate
// inline as the CA, and the static admin token, so kubectl and Kubernetes clients work unchanged.

import fs from 'node:fs';

export interface KubeconfigInput {
  url: string;
  caPem: string;
  token: string;
  /** Cluster, user and context name. */
  name: string;
}

export function writeKubeconfig(file: string, input: KubeconfigInput): void {
  const caData = Buffer.from(input.caPem).toString('base64');
  // JSON-compatible scalars only, so plain interpolation is safe YAML.
  const text = `apiVersion: v1
kind: Config
clusters:
  - name: ${input.name}
    cluster:
      server: ${input.url}
      certificate-authority-data: ${caData}
users:
  - name: ${input.name}-admin
    user:
      token: ${input.token}
contexts:
  - name: ${input.name}
    context:
      cluster: ${input.name}
      user: ${input.name}-admin
      namespace: default
current-context: ${input.name}
`;
  fs.writeFileSync(file, text, { mode: 0o600 });
}
