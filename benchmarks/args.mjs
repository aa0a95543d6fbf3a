// Command-line options of the benchmark scripts: node's util.parseArgs in
// strict mode, so a misspelt or unknown option stops the script with a
// message instead of silently running (and overwriting results) with
// defaults; --help prints the usage.
import { parseArgs } from 'node:util';

/**
 * Parses process.argv for options that each take one value (`names`) plus
 * --help. Returns get(name, default), and number(name, default, min) for
 * numeric options. Exits 0 after --help, 2 on a usage error.
 */
export function benchArgs(usage, names) {
  const options = { help: { type: 'boolean', short: 'h' } };
  for (const n of names) options[n] = { type: 'string' };
  const fail = (msg) => {
    process.stderr.write(`${msg}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  };
  let values = {};
  try {
    ({ values } = parseArgs({ args: process.argv.slice(2), options, strict: true, allowPositionals: false }));
  } catch (e) {
    fail(e.message);
  }
  if (values.help) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  const get = (name, dflt) => values[name] ?? dflt;
  const number = (name, dflt, min = 0) => {
    const v = Number(get(name, String(dflt)));
    if (!Number.isFinite(v) || v < min) fail(`--${name} must be a number >= ${min}, got '${get(name)}'`);
    return v;
  };
  return { get, number };
}
