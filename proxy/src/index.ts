// The proxy's public surface, for the CLI's demo and for tests that run it in-process.

export { parseProxyFlags, FlagError, PROXY_USAGE, type ProxyConfig } from './config/flags.ts';
export { startProxy, type RunningProxy } from './start-proxy.ts';
export { PROXY_ERRORS, type ProxyErrorCode } from './errors.ts';
export { createLogger, silentLogger, type Logger } from './telemetry/logger.ts';
