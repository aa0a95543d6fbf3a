/**
 * Loads the native addon (ckpt.node) once, with an error that says how to fix
 * a missing or broken build.
 * @internal
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CkptError } from './errors.js';

const require = createRequire(import.meta.url);

/** Root of the installed package (the directory holding package.json). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let cached: Record<string, unknown> | undefined;

/** The raw addon exports. Each TS module narrows the part it uses. */
export function native<T = Record<string, unknown>>(): T {
  if (!cached) {
    try {
      const load = require('node-gyp-build') as (dir: string) => Record<string, unknown>;
      cached = load(packageRoot);
    } catch (err) {
      throw new CkptError(
        'ERR_CKPT_NATIVE_LOAD',
        [
          `Could not load the ckpt native addon: ${(err as Error).message}`,
          'Possible fixes:',
          '  - run `npm rebuild ckpt` (or `npm ci` in a checkout) to build it from source;',
          '  - install the build tools first: `apt-get install build-essential python3 libzstd-dev libxxhash-dev`;',
          '  - check that Node.js >= 20 on Linux x86_64 is used.',
        ].join('\n'),
        { cause: err },
      );
    }
  }
  return cached as T;
}

/** Directory of the native executables and libraries built by `npm install`. */
export function nativeBinDir(): string {
  return path.join(packageRoot, 'build', 'Release');
}
