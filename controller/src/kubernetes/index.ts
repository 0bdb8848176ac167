// Public surface of kubernetes/: what createMode() needs to run the controller in Kubernetes mode.
// Loaded only in that mode, so a standalone controller never loads the Kubernetes client.
// Everything else is in internal/; tests import it from there by path.

export { createKubernetesMode, type KubernetesModeOptions, type KubernetesTuning } from './internal/kubernetes-mode.ts';
