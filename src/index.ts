/**
 * Public programmatic API of ckpt.
 */
export { CkptError, ExitCode } from './errors.js';
export { Coordinator } from './coordinator.js';
export type {
  CheckpointCompletedEvent,
  CheckpointStartedEvent,
  CoordinatorEvents,
  CoordinatorExitEvent,
  CoordinatorLogEvent,
  CoordinatorOptions,
  CoordinatorStatus,
  RestartCompletedEvent,
  WorkerInfo,
} from './coordinator.js';
export { installCoordinatorShim, uninstallCoordinatorShim } from './coordinator-install.js';
export type { CoordinatorInstallOptions, CoordinatorInstallResult } from './coordinator-install.js';
export * as protocol from './protocol.js';
