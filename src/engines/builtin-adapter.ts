/**
 * The built-in engine behind the Engine interface (command lines from
 * src/engines/builtin.ts).
 *
 * In a container the job already runs in bubblewrap's user and pid
 * namespaces, and the restarter cannot mount a fresh /proc for a nested pid
 * namespace there (bwrap's /proc has read-only submounts, which the kernel
 * refuses to hide), so inside containers the engine uses bwrap's namespaces
 * instead of creating its own.
 */
import type { Engine } from './engine.js';
import { builtinEngine as base, launchSpec, restartSpec } from './builtin.js';

export const builtinEngine: Engine = {
  ...base,
  launch: (ctx, command) => launchSpec(ctx, command, { noNamespaces: ctx.container }),
  restart: async (ctx, src) => restartSpec(ctx, src, { noNamespaces: ctx.container }),
};
