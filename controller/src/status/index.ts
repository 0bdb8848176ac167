// Public surface of status/: the one computation of route status (DesiredStatuses, fed by a provider
// of proxy views), the reconciler that keeps it current, and the interface of where statuses are written.

export { DesiredStatuses, type DesiredStatusesOptions, type StatusChanges } from './desired-status.ts';
export { routeGenerations, viewsOfRecords, type ProxyView, type ProxyViews } from './proxy-views.ts';
export { StatusReconciler, type StatusReconcilerOptions } from './status-reconciler.ts';
export type { StatusSink } from './status-sink.ts';
