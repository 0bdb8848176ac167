// Public surface of discovery/: the RouteDiscovery gRPC server and what it is built from (the
// snapshot store, the registry of connected proxies, the Authenticator interface, the TLS serving certificate).

export { DiscoveryServer, type DiscoveryServerOptions } from './discovery-server.ts';
export { SnapshotStore, type SnapshotStoreOptions, type TranslationListener } from './snapshot-store.ts';
export { ProxyRegistry, ProxyRecord, type ProxyNack } from './proxy-registry.ts';
export { ConvergenceTracker, type ConvergenceTrackerOptions } from './convergence-tracker.ts';
export { trustIdentityClaims, type Authenticator, type AuthenticatedProxy, type DiscoveryCall, type ProxyIdentityClaim } from './identity.ts';
export { toServiceError } from './grpc-errors.ts';
export { ServingCertificate, type ServingCertificateFiles, type ServingCertificateOptions } from './serving-certificate.ts';
