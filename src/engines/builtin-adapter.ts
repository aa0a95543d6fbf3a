/**
 * The built-in engine (libckpt.so + restarter) behind the Engine interface.
 * The launch/restart command lines themselves come from src/engines/builtin.ts.
 */
import type { Engine, EngineContext, ExecSpec, RestartSource } from './engine.js';
import { nativeBinDir } from '../native.js';

interface BuiltinModule {
  [key: string]: unknown;
}

let loaded: BuiltinModule | null | undefined;

async function load(): Promise<BuiltinModule | null> {
  if (loaded === undefined) {
    // A computed specifier: the module ships with the engine build.
    const spec = './builtin.js';
    try {
      loaded = (await import(spec)) as BuiltinModule;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

export const builtinEngine: Engine = {
  name: 'builtin',
  formats: ['ckpt'],

  unavailable() {
    return 'The built-in engine is not available in this build; use --engine dmtcp with DMTCP installed.';
  },

  hostDir() {
    return nativeBinDir();
  },

  launch(_ctx: EngineContext, _command: string[]): ExecSpec {
    throw new Error('built-in engine not available');
  },

  async restart(_ctx: EngineContext, _src: RestartSource): Promise<ExecSpec> {
    await load();
    throw new Error('built-in engine not available');
  },
};
