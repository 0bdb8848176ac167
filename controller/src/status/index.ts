// Public surface of status/: the pure route-status computation, the reconciler that publishes it,
// and the sink interface with its in-memory implementation (standalone mode).

export { computeRouteStatus, type ProxyGroup, type RouteStatusInput } from './route-status.ts';
export { StatusReconciler, type StatusReconcilerOptions, type StatusWrites } from './status-reconciler.ts';
export { MemoryStatusSink, type StatusSink } from './status-sink.ts';
