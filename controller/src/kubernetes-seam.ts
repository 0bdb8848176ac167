// The seam Kubernetes mode plugs into: controller/src/kubernetes/index.ts (informers, status writes,
// leader election) exports createKubernetesMode; until it exists that mode is refused at start-up.

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Authenticator, ProxyRegistry, SnapshotStore } from './discovery/index.ts';
import type { LeaderElectionConfig } from './config/flags.ts';
import { ControllerError } from './errors.ts';
import type { RouteSource } from './sources/index.ts';
import type { StatusSink } from './status/index.ts';
import type { Logger } from './telemetry/logger.ts';
import type { ControllerMetrics } from './telemetry/metrics.ts';

export interface KubernetesModeOptions {
  /** In-cluster configuration when absent. */
  kubeconfig?: string;
  /** Watch one namespace; all when absent. */
  namespace?: string;
  logger: Logger;
  metrics: ControllerMetrics;
  /** This replica's name: the Lease holder, its proxy report, its gRPC controller id. Default: the host name. */
  replicaId?: string;
  /** This replica's pod: owner of its proxy report, which the garbage collector then removes with the pod. */
  replicaPod?: { name: string; uid: string };
  /** Several replicas, one writing status. Absent: this replica always writes (a single replica). */
  leaderElection?: LeaderElectionOptions;
}

/** Lease name, namespace (default: the kubeconfig context's, in a pod its own) and timing. */
export type LeaderElectionOptions = LeaderElectionConfig;

/** What a running controller hands Kubernetes mode once it is wired: the proxies it serves and its tables. */
export interface AttachedController {
  registry: ProxyRegistry;
  store: SnapshotStore;
}

/** What Kubernetes mode provides in place of the directory source, the in-memory sink and trusted claims. */
export interface KubernetesMode {
  /** FhirRoutes (and the Services and Secrets they name) from informers. */
  source: RouteSource;
  /** Writes status through the status subresource, on the leader only. */
  statusSink: StatusSink;
  /** TokenReview of the proxy's projected service-account token (issue 4); claims are trusted when absent. */
  authenticate?: Authenticator;
  /**
   * Called once after startController(): from then on this replica reports its proxies' ACKs to the
   * others and, as leader, counts every replica's proxies in Programmed. Without it only the leader's
   * own proxies count.
   */
  attach?(controller: AttachedController): void;
}

/** The export controller/src/kubernetes/index.ts must provide. */
export type CreateKubernetesMode = (options: KubernetesModeOptions) => Promise<KubernetesMode>;

// Compiled (dist/, the image) this file is .js and so is its neighbour: a string URL is not rewritten by tsc.
const KUBERNETES_MODULE = new URL(`./kubernetes/index${import.meta.url.endsWith('.js') ? '.js' : '.ts'}`, import.meta.url);

export async function loadKubernetesMode(options: KubernetesModeOptions): Promise<KubernetesMode> {
  // Checked first: a missing module inside an existing kubernetes/ must surface as itself.
  if (!fs.existsSync(fileURLToPath(KUBERNETES_MODULE))) {
    throw new ControllerError('FHIRMESH_MODE_UNAVAILABLE', 'kubernetes mode is not built yet: run standalone with --routes-dir DIR');
  }
  const module = (await import(KUBERNETES_MODULE.href)) as { createKubernetesMode?: unknown };
  if (typeof module.createKubernetesMode !== 'function') {
    throw new ControllerError('FHIRMESH_MODE_UNAVAILABLE', 'kubernetes mode is incomplete: controller/src/kubernetes/index.ts does not export createKubernetesMode');
  }
  return (module.createKubernetesMode as CreateKubernetesMode)(options);
}
