// Public surface of kubernetes/: createKubernetesMode, which ../kubernetes-seam.ts loads on demand (so
// standalone mode never loads the Kubernetes client), and the parts tests drive directly.

export { createKubernetesMode, SECRET_FIELD_SELECTOR, type KubernetesModeHandle, type KubernetesModeInternals, type KubernetesModeSetup, type KubernetesTuning } from './kubernetes-mode.ts';
export { KubeApiError, KubeClient, statusOf, type KubeRequest, type KubeResponse } from './kube-client.ts';
export { ResilientInformer, DEFAULT_INFORMER_TIMING, type InformerListener, type InformerTiming, type ResilientInformerOptions } from './resilient-informer.ts';
export { KubernetesRouteSource, SECRET_KEYS, projectRoute, projectSecret, projectService, type SecretData, type ServiceEntry } from './kubernetes-route-source.ts';
export { WorkQueue, type Reconcile, type ReconcileResult, type WorkQueueOptions } from './work-queue.ts';
export {
  FIELD_MANAGER,
  RouteStatusWriter,
  kubeStatusPatcher,
  withTransitionTimesOf,
  type DesiredStatus,
  type RouteCache,
  type RouteStatusWriterOptions,
  type StatusPatch,
  type StatusPatcher,
  type StatusReconcileOutcome,
} from './route-status-writer.ts';
export {
  ALWAYS_LEADER,
  DEFAULT_LEADER_ELECTION_TIMING,
  LeaderElector,
  LeaseConflictError,
  kubeLeaseStore,
  type ElectionRound,
  type LeaderElectionTiming,
  type LeaderElectorOptions,
  type Leadership,
  type LeaseSpec,
  type LeaseStore,
  type StoredLease,
} from './leader-election.ts';
export { buildReport, groupViews, mergeViews, parseReport, viewsOfRecords, viewsOfReport, REPORT_DATA_KEY, REPORT_LABEL, type ProxyReport, type ProxyView, type ReportedProxy } from './proxy-reports.ts';
export { ProxyReportAggregator, ProxyReportPublisher, projectReport, reportConfigMapName, reportTimingFor, type ReportEntry, type ReportTiming } from './replica-reports.ts';
export { KubernetesMetrics } from './kubernetes-metrics.ts';
export { kubeTokenReviewer } from './token-reviewer.ts';
