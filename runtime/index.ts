// Public surface of runtime/: what both processes need and is not the contract (that is api/): the
// JSON logger, the admin listener, binding listeners, the life of a binary, canonical JSON, tracing.
// It imports nothing of the controller, the Kubernetes client or gRPC (lint checks), so the proxy may use it.

export { ALWAYS_REDACTED_HEADERS, createLogger, LOG_LEVELS, REDACTED, silentLogger, type Logger, type LoggerOptions, type LogLevel } from './logger.ts';
export { createAdminServer, type AdminServerOptions, type MetricsText } from './admin-server.ts';
export { addressText, closeServer, hostForUrl, listen, listenFailure, type BoundAddress } from './listen.ts';
export { exitStartFailure, flagsOrExit, stopOnSignals, type Stoppable } from './process-life.ts';
export { canonicalJson } from './canonical-json.ts';
export { checkKeyPair, readKeyPair, watchKeyPair, type KeyPair, type TlsFiles } from './tls-files.ts';
export {
  describeTracing,
  startTracing,
  tracingSettings,
  TracingConfigError,
  type OtlpProtocol,
  type SamplerSetting,
  type Tracing,
  type TracingIdentity,
  type TracingSettings,
} from './tracing.ts';
