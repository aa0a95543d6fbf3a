/**
 * The command groups of `ckpt`. Add a group by importing its `register` here.
 */
import type { Command } from 'commander';

export type RegisterFn = (program: Command) => void;

export const groups: RegisterFn[] = [];
