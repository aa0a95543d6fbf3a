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
export { commitGeneration, convertImage, gc, generationDir, indexImages, inspectImage, readLatest, readManifest, verifyGeneration, verifyImage, verifyPath } from './images.js';
export type { GcReport, IndexedGeneration, IndexedProcess, IndexResult, Manifest, VerifyReport } from './images.js';
