// Starts the test control plane and keeps it up until Ctrl-C, for poking at it by hand with kubectl
// or running a service against it:  node_modules/.bin/node test/cluster/serve-control-plane.ts

import { cacheDir, locateBinaries } from './binaries.ts';
import { startControlPlane } from './control-plane.ts';

const binaries = locateBinaries();
const plane = await startControlPlane({ binaries });
console.log(`Kubernetes ${plane.version} at ${plane.url}
  export KUBECONFIG=${plane.kubeconfigPath}
  ${cacheDir(binaries.kubeVersion)}/kubectl get namespaces
logs: ${plane.logs.apiserver}, ${plane.logs.etcd}
Ctrl-C stops etcd and kube-apiserver and removes ${plane.dir}`);

const stop = (): void => {
  plane.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
