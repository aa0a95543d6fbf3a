/**
 * Public programmatic API of ckpt.
 */
export { CkptError, ExitCode } from './errors.js';
