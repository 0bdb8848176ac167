// What a mode (standalone over a directory, or Kubernetes) gives the controller: where routes come
// from, who the proxies are, where statuses go. createMode() builds one; startController() runs it.

import type { FhirRouteStatus } from '../../api/index.ts';
import type { Logger } from '../../runtime/index.ts';
import type { Authenticator, ProxyRegistry, SnapshotStore } from './discovery/index.ts';
import type { RouteWatcher } from './sources/index.ts';
import type { DesiredStatuses, ProxyViews, StatusReconciler, StatusSink } from './status/index.ts';
import type { ChangeTracer } from './telemetry/change-tracer.ts';
import type { ControllerMetrics } from './telemetry/metrics.ts';

export interface ControllerMode {
  /** Where routes come from. Its start() and stop() start and stop everything the mode runs. */
  readonly source: RouteWatcher;
  /** Who a proxy is: TokenReview in Kubernetes mode; standalone trusts the claimed namespace. */
  readonly authenticate: Authenticator;
  /** Named in GetProxyStatus and /debug/status: the replica id in Kubernetes mode, else the host name. */
  readonly controllerId: string;
  readonly logger: Logger;
  readonly metrics: ControllerMetrics;
  /** Spans of compiles, pushes and status work (NO_TRACING unless OTEL_* names an endpoint). */
  readonly tracer: ChangeTracer;
  /** Where desired statuses are written (the status subresource); standalone has none. */
  readonly statusSink?: StatusSink;
  /** Proxies of the other replicas, freshest report first; status counts them after this replica's own. */
  remoteProxyViews?(): ReturnType<ProxyViews>;
  /** The status each route has where statuses are stored, so lastTransitionTime survives restarts and leader changes. */
  storedStatus?(key: string): FhirRouteStatus | undefined;
  /** Fields of the mode's own for /debug/status (the directory source's refused files). */
  debugStatus?(): Record<string, unknown>;
  /** Called once, before the source starts, with the parts of the controller the mode's writers read. */
  attach?(controller: AttachedController): void;
}

/** The running controller's parts a mode may read and subscribe to. */
export interface AttachedController {
  registry: ProxyRegistry;
  store: SnapshotStore;
  statuses: DesiredStatuses;
  reconciler: StatusReconciler;
}
