// The controller's public surface, for the CLI and for tests that run it in-process.

export { parseControllerFlags, FlagError, CONTROLLER_USAGE, type ControllerConfig, type SourceConfig } from './config/flags.ts';
export { startController, type ControllerDeps, type RunningController } from './start-controller.ts';
export { CONTROLLER_ERROR_CODES, ControllerError, isControllerError, type ControllerErrorCode } from './errors.ts';
export { createLogger, silentLogger, type Logger, type LogLevel } from './telemetry/logger.ts';
export { ControllerMetrics } from './telemetry/metrics.ts';
export type { CreateKubernetesMode, KubernetesMode, KubernetesModeOptions } from './kubernetes-seam.ts';
