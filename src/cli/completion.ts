/**
 * `ckpt completion bash|zsh`: shell completion generated from the commander
 * tree (commands, subcommands, options), plus live names of checkpoints and
 * instances via `ckpt _complete`.
 */
import { Command } from 'commander';

import { CkptError } from '../errors.js';
import { addOptions } from './options.js';

interface Node {
  words: string[];
  options: string[];
}

/** Every command path (space-joined) with its subcommand names and options. */
export function completionTree(program: Command): Record<string, Node> {
  const out: Record<string, Node> = {};
  const walk = (cmd: Command, prefix: string) => {
    const visible = cmd.commands.filter((c) => !c.name().startsWith('_'));
    out[prefix] = {
      words: visible.map((c) => c.name()),
      options: cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => Boolean(x))).concat('--help'),
    };
    for (const c of visible) walk(c, prefix ? `${prefix} ${c.name()}` : c.name());
  };
  walk(program, '');
  return out;
}

function bashScript(tree: Record<string, Node>): string {
  const cases = Object.entries(tree)
    .map(([k, v]) => `    ${JSON.stringify(k)}) words=${JSON.stringify([...v.words, ...v.options].join(' '))} ;;`)
    .join('\n');
  return `# bash completion for ckpt; load with: source <(ckpt completion bash)
_ckpt_complete() {
  local cur path="" i w words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ $w == -* ]] && continue
    case "$path" in
${Object.keys(tree)
  .map((k) => `      ${JSON.stringify(k)}) case " ${tree[k]!.words.join(' ')} " in *" $w "*) path="\${path:+$path }$w" ;; esac ;;`)
  .join('\n')}
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  case "$path" in
    "checkpoint"|"checkpoint delete"|"restart") words="$words $(ckpt _complete checkpoints 2>/dev/null)" ;;
    "checkpoint instance"|"instance stop"|"instance logs") words="$words $(ckpt _complete instances 2>/dev/null)" ;;
    "stop"|"status") words="$words $(ckpt _complete jobs 2>/dev/null)" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -F _ckpt_complete ckpt
`;
}

function zshScript(tree: Record<string, Node>): string {
  return `#compdef ckpt
# zsh completion for ckpt; load with: source <(ckpt completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(tree)}`;
}

export function register(program: Command): void {
  const cmd = program
    .command('completion')
    .description('print a shell completion script')
    .argument('<shell>', 'bash or zsh');
  cmd.addHelpText(
    'after',
    `
Examples:
  source <(ckpt completion bash)                     this shell only
  ckpt completion bash > ~/.local/share/bash-completion/completions/ckpt
  ckpt completion zsh > "\${fpath[1]}/_ckpt"`,
  );
  cmd.action((shell: string) => {
    const tree = completionTree(program);
    if (shell === 'bash') process.stdout.write(bashScript(tree));
    else if (shell === 'zsh') process.stdout.write(zshScript(tree));
    else throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Unsupported shell ${JSON.stringify(shell)}: use bash or zsh.`);
  });

  // Hidden helper the scripts call for live names.
  const hidden = new Command('_complete').argument('<what>').description('names for shell completion');
  addOptions(hidden, []);
  hidden.action(async (what: string) => {
    const { Store } = await import('../store.js');
    const store = new Store();
    let names: string[] = [];
    if (what === 'checkpoints') names = store.listCheckpoints();
    else {
      const { Registry } = await import('../instances.js');
      const kind = what === 'instances' ? 'instance' : 'job';
      names = (await new Registry(store).list(kind)).map((e) => e.name);
    }
    process.stdout.write(names.join(' '));
  });
  program.addCommand(hidden, { hidden: true });
}
