// The controller's public surface: flags → createMode → startController, as main.ts runs it and as
// tests run it in-process, and the stable error codes.

export { parseControllerFlags, FlagError, CONTROLLER_USAGE, type ControllerConfig, type SourceConfig } from './config/flags.ts';
export { createMode, type ModeTuning } from './create-mode.ts';
export type { AttachedController, ControllerMode } from './controller-mode.ts';
export { startController, type RunningController, type StartOptions } from './start-controller.ts';
export { CONTROLLER_ERROR_CODES, ControllerError, isControllerError, type ControllerErrorCode } from './errors.ts';
export { ControllerMetrics } from './telemetry/metrics.ts';
