/**
 * The command groups of `ckpt`. Add a group by importing its `register` here.
 */
import type { Command } from 'commander';

import { register as registerBench } from './bench.js';
import { register as registerCommand } from './command.js';
import { register as registerCoordinator } from './coordinator.js';

export type RegisterFn = (program: Command) => void;

export const groups: RegisterFn[] = [registerCoordinator, registerCommand, registerBench];
