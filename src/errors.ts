/**
 * Errors with stable string codes. Every error ckpt throws on purpose is a
 * CkptError; its `code` is part of the public API (see docs/errors.md).
 */
export class CkptError extends Error {
  readonly code: string;
  /** Process exit code the CLI uses for this error (see docs/cli.md). */
  readonly exitCode: number;

  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CkptError';
    this.code = code;
    this.exitCode = options?.exitCode ?? exitCodeFor(code);
  }
}

/** Exit codes of every ckpt command (documented in docs/cli.md). */
export const ExitCode = {
  Ok: 0,
  /** The operation failed. */
  Failure: 1,
  /** Bad command line or invalid option value. */
  Usage: 2,
  /** A named object (checkpoint, instance, job, file) does not exist. */
  NotFound: 3,
  /** Data is incomplete or failed verification. */
  Corrupt: 4,
  /** Refused because something is in use or already exists. */
  Conflict: 5,
  /** Interrupted by a signal. */
  Interrupted: 130,
} as const;

function exitCodeFor(code: string): number {
  switch (code) {
    case 'ERR_CKPT_INVALID_ARGUMENT':
    case 'ERR_CKPT_USAGE':
      return ExitCode.Usage;
    case 'ERR_CKPT_NOT_FOUND':
      return ExitCode.NotFound;
    case 'ERR_CKPT_CORRUPT':
    case 'ERR_CKPT_TRUNCATED':
    case 'ERR_CKPT_INCOMPLETE':
      return ExitCode.Corrupt;
    case 'ERR_CKPT_BUSY':
    case 'ERR_CKPT_EXISTS':
    case 'ERR_CKPT_ADDR_IN_USE':
      return ExitCode.Conflict;
    default:
      return ExitCode.Failure;
  }
}

/** Wraps an error thrown by the addon (which carries `code`) into a CkptError. */
export function fromNative(err: unknown, context?: string): CkptError {
  if (err instanceof CkptError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && e.code.startsWith('ERR_CKPT') ? e.code : 'ERR_CKPT_INTERNAL';
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  return new CkptError(code, context ? `${context}: ${msg}` : msg, { cause: err });
}
