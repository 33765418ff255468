// `fragfs completion bash|zsh|fish`: a shell completion script made from the commands' own
// definitions (names, options, arguments), so it never lists an option that does not exist.

import type { Command, Option } from 'commander';
import { FragfsError } from '../src/errors.js';
import { action } from './common.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: eval "$(fragfs completion bash)", or save it where your shell loads completions')
    .argument('<shell>', `one of ${SHELLS.join(', ')}`)
    .action(
      action(async (shell: string) => {
        if (!(SHELLS as readonly string[]).includes(shell)) throw new FragfsError('USAGE', `no completion for ${JSON.stringify(shell)}: give one of ${SHELLS.join(', ')}`);
        process.stdout.write(completionScript(program, shell as Shell));
      }),
    );
}

export function completionScript(program: Command, shell: Shell): string {
  const cmds = visibleCommands(program);
  if (shell === 'bash') return bashScript(program.name(), cmds);
  if (shell === 'zsh') return zshScript(program.name(), cmds);
  return fishScript(program.name(), cmds);
}

export function visibleCommands(program: Command): Command[] {
  return program.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
}

/** Every spelling of a command's options (long and short), plus --help. */
function optionWords(c: Command): string[] {
  const words = c.options.flatMap((o) => [o.long, o.short].filter((w): w is string => w !== undefined));
  return [...words, '--help'];
}

/** The first sentence of a description, on one line, without characters the shells treat specially. */
function short(text: string): string {
  const one = text.replace(/\s+/g, ' ').split(/(?<=[a-z)])[.;:] /)[0]!.replace(/[.;:]$/, '');
  return (one.length > 70 ? `${one.slice(0, 67)}...` : one).replace(/['"`$\\[\]:]/g, '');
}

/** The placeholder of an option's value (`<name>` -> name), for zsh's messages. */
function valueName(o: Option): string {
  return (/<([^>]+)>|\[([^\]]+)\]/.exec(o.flags)?.slice(1).find(Boolean) ?? 'value').replace(/[^a-z0-9 -]/gi, '');
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

function bashScript(name: string, cmds: Command[]): string {
  const fn = `_${name}_complete`;
  const cases = cmds
    .map((c) => {
      const names = [c.name(), ...c.aliases()].join('|');
      const valued = c.options.filter(takesValue).flatMap((o) => [o.long, o.short].filter(Boolean)).join('|');
      return [
        `    ${names})`,
        valued ? `      case "$prev" in ${valued}) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac` : '',
        `      opts="${optionWords(c).join(' ')}" ;;`,
      ]
        .filter(Boolean)
        .join('\n');
    })
    .join('\n');
  return `# bash completion for ${name} (made by \`${name} completion bash\`)
${fn}() {
  local cur prev cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${cmds.map((c) => c.name()).join(' ')} help --help --version" -- "$cur"))
    return
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F ${fn} ${name}
`;
}

function zshScript(name: string, cmds: Command[]): string {
  const list = cmds.map((c) => `    '${c.name()}:${short(c.description())}'`).join('\n');
  const cases = cmds
    .map((c) => {
      const specs = c.options.flatMap((o) => {
        const arg = takesValue(o) ? `:${valueName(o)}:_files` : '';
        return ([o.long, o.short].filter(Boolean) as string[]).map((w) => `'${w}[${short(o.description)}]${arg}'`);
      });
      return `    ${[c.name(), ...c.aliases()].join('|')})\n      _arguments ${[...specs, "'*:file:_files'"].join(' \\\n        ')} ;;`;
    })
    .join('\n');
  return `#compdef ${name}
# zsh completion for ${name} (made by \`${name} completion zsh\`): save as _${name} in a folder of $fpath
_${name}() {
  local -a commands
  commands=(
${list}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  words=(\${words[2,-1]})
  (( CURRENT-- ))
  case \${words[1]} in
${cases}
    *) _files ;;
  esac
}
if [ "$funcstack[1]" = "_${name}" ]; then _${name} "$@"; else compdef _${name} ${name}; fi
`;
}

function fishScript(name: string, cmds: Command[]): string {
  const lines = [`# fish completion for ${name} (made by \`${name} completion fish\`): save as ~/.config/fish/completions/${name}.fish`, `complete -c ${name} -f`];
  const all = cmds.map((c) => c.name()).join(' ');
  for (const c of cmds) {
    lines.push(`complete -c ${name} -n 'not __fish_seen_subcommand_from ${all}' -a ${c.name()} -d '${short(c.description())}'`);
    const when = `-n '__fish_seen_subcommand_from ${[c.name(), ...c.aliases()].join(' ')}'`;
    for (const o of c.options) {
      const spell = [o.long ? `-l ${o.long.slice(2)}` : '', o.short ? `-s ${o.short.slice(1)}` : ''].filter(Boolean).join(' ');
      lines.push(`complete -c ${name} ${when} ${spell}${takesValue(o) ? ' -r -F' : ''} -d '${short(o.description)}'`);
    }
    if (c.registeredArguments.length > 0) lines.push(`complete -c ${name} ${when} -F`);
  }
  return `${lines.join('\n')}\n`;
}
