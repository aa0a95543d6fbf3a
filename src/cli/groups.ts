/**
 * The command groups of `ckpt`. Add a group by importing its `register` here.
 */
import type { Command } from 'commander';

import { register as registerApptainer } from './apptainer.js';
import { register as registerCompletion } from './completion.js';
import { register as registerDemo } from './demo.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerBench } from './bench.js';
import { register as registerCommand } from './command.js';
import { register as registerCoordinator } from './coordinator.js';
import { register as registerJobs } from './jobs.js';
import { register as registerImages } from './images.js';
import { register as registerCheck } from './check.js';

export type RegisterFn = (program: Command) => void;

export const groups: RegisterFn[] = [registerJobs, registerApptainer, registerDoctor, registerCompletion, registerDemo, registerCoordinator, registerCommand, registerBench, registerImages, registerCheck];
