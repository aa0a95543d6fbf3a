/**
 * The typed option table of the job and instance commands: every option is
 * declared once (flags, description, parser) and drives parsing, `--help`
 * and docs/cli.md. Values are validated here, before anything runs.
 */
import { Option, type Command } from 'commander';

import { parseEngineName } from '../engines/engine.js';
import { CkptError } from '../errors.js';

export interface OptionSpec {
  flags: string;
  description: string;
  parse?: (value: string, previous: unknown) => unknown;
  default?: unknown;
}

function invalid(option: string, value: string, expect: string): never {
  throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid ${option} ${JSON.stringify(value)}: expected ${expect}.`);
}

/** A non-negative integer within [min, max]. */
export function intParser(option: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) invalid(option, value, `a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) invalid(option, value, `a whole number from ${min} to ${max}`);
    return n;
  };
}

/** Seconds as a positive number (fractions allowed), returned in milliseconds. */
export function secondsParser(option: string) {
  return (value: string): number => {
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0 || Number(value) > 1e7) invalid(option, value, 'a number of seconds > 0');
    return Math.round(Number(value) * 1000);
  };
}

const collect = (value: string, previous: unknown): string[] => [...((previous as string[] | undefined) ?? []), value];

/** Every option of the job/instance commands, by key. */
export const OPTIONS = {
  json: { flags: '--json', description: 'print one JSON document on stdout (for scripts)' },
  engine: {
    flags: '--engine <engine>',
    description: 'checkpoint engine: builtin (no install needed) or dmtcp (needs DMTCP_PREFIX or dmtcp_launch on PATH); restarts default to the engine that wrote the images',
    parse: (v: string) => parseEngineName(v),
    default: 'builtin',
  },
  ckptdir: { flags: '--ckptdir <dir>', description: 'write images to DIR instead of a named checkpoint in $CKPT_HOME' },
  interval: {
    flags: '--interval <seconds>',
    description: 'also checkpoint automatically every SECONDS',
    parse: intParser('--interval', 1, 31_536_000),
  },
  keep: {
    flags: '--keep <n>',
    description: 'after each durable checkpoint keep only the newest N generations (never removes the newest complete one)',
    parse: intParser('--keep', 1, 1_000_000),
  },
  name: { flags: '--name <name>', description: 'name of the job and of its checkpoint (default: derived from the command)' },
  detach: { flags: '--detach', description: 'return at once; the job keeps running (output goes to a log)' },
  coordPort: {
    flags: '--coord-port <port>',
    description: "join the coordinator on this port, or start one there (default: a new one on a free port chosen by the kernel)",
    parse: intParser('--coord-port', 1, 65535),
  },
  kill: { flags: '--kill', description: 'stop the job once its images are durable (like dmtcp_command -kc)' },
  timeout: {
    flags: '--timeout <seconds>',
    description: 'give up after SECONDS (default: wait as long as the checkpoint takes)',
    parse: secondsParser('--timeout'),
  },
  generation: { flags: '--generation <n>', description: 'restart generation N instead of the newest complete one', parse: intParser('--generation', 0, Number.MAX_SAFE_INTEGER) },
  all: { flags: '--all', description: 'all of them' },
  force: { flags: '--force', description: 'even while in use' },
  stopTimeout: {
    flags: '--grace <seconds>',
    description: 'seconds between SIGTERM and SIGKILL (default 10)',
    parse: secondsParser('--grace'),
  },
  dmtcpLaunch: { flags: '--dmtcp-launch <checkpoint>', description: 'run the instance under checkpoint control, writing into the named checkpoint' },
  dmtcpRestart: { flags: '--dmtcp-restart <checkpoint>', description: 'restart the instance from the newest complete generation of the named checkpoint' },
  host: { flags: '--host', description: 'no container: run CMD (given after --) on the host' },
  bind: {
    flags: '-B, --bind <spec>',
    description: 'bind SRC[:DST[:ro|rw]] into the container (repeatable, as in Apptainer)',
    parse: collect,
  },
  tail: { flags: '-n, --lines <n>', description: 'print only the last N lines', parse: intParser('--lines', 1, 10_000_000) },
  follow: { flags: '-f, --follow', description: 'keep printing new output until interrupted' },
} satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTIONS;

/** Adds the listed options from the table to `cmd`. */
export function addOptions(cmd: Command, keys: OptionKey[]): Command {
  for (const key of keys) {
    const spec: OptionSpec = OPTIONS[key];
    const opt = new Option(spec.flags, spec.description);
    if (spec.parse) opt.argParser(spec.parse as (v: string, p: unknown) => unknown);
    if (spec.default !== undefined) opt.default(spec.default);
    cmd.addOption(opt);
  }
  return cmd;
}
