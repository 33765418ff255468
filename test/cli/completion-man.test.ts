// Shell completion and the manual page through the real CLI: each is made from the commands'
// own definitions, so every command and every option of `--help` is in them; the bash script
// completes command names and a command's options when run by bash; the page renders without
// roff warnings.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { oneLineError, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';

/** Commands and their long options, as `fragfs --help` and `fragfs CMD --help` list them. */
async function listCommandsAndOptions(): Promise<Map<string, string[]>> {
  const top = await runCli(['--help']);
  const section = top.stdout.split(/^Commands:$/m)[1] ?? '';
  const names = [...section.matchAll(/^ {2}([a-z]+)[| ]/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  const out = new Map<string, string[]>();
  for (const name of names) {
    const help = await runCli([name, '--help']);
    // The options part only (descriptions may name other commands' options); --help is every command's.
    const options = help.stdout.split(/^Options:$/m)[1] ?? '';
    const longs = [...options.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!);
    out.set(name, longs.filter((o) => o !== '--help'));
  }
  return out;
}

let listed: Promise<Map<string, string[]>> | undefined;
/** listCommandsAndOptions once for the file: a CLI process per command, read by two tests. */
function commandsAndOptions(): Promise<Map<string, string[]>> {
  listed ??= listCommandsAndOptions();
  return listed;
}

test('completion scripts for bash, zsh and fish hold every command and option', async (t) => {
  const all = await commandsAndOptions();
  t.true(all.has('diff') && all.has('mount') && all.has('completion'), [...all.keys()].join(' '));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await runCli(['completion', shell]);
    t.is(r.code, 0, r.stderr);
    for (const [cmd, options] of all) {
      t.true(r.stdout.includes(cmd), `${shell}: ${cmd}`);
      for (const o of options) t.true(r.stdout.includes(shell === 'fish' ? `-l ${o.slice(2)}` : o), `${shell}: ${cmd} ${o}`);
    }
  }
  oneLineError(t, await runCli(['completion', 'tcsh']), 2, /no completion for "tcsh": give one of bash, zsh, fish/);
});

test('the bash script completes command names and the options of a command', async (t) => {
  const work = await tempDir('fragfs-completion-');
  t.teardown(() => work.remove());
  const script = join(work.path, 'fragfs.bash');
  await writeFile(script, (await runCli(['completion', 'bash'])).stdout);
  const complete = (words: string[]) =>
    spawnSync('bash', ['-c', `source '${script}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _fragfs_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
  const names = complete(['fragfs', 'sn']);
  t.is(names.status, 0, names.stderr);
  t.deepEqual(names.stdout.trim().split('\n').sort(), ['snapshot', 'snapshots']);
  const opts = complete(['fragfs', 'mount', 'vault', '--a']);
  t.deepEqual(opts.stdout.trim().split('\n').sort(), ['--all', '--allow-other']);
});

test('fragfs man prints a page with every command, its options and the exit codes', async (t) => {
  const r = await runCli(['man']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^\.TH FRAGFS 1 /);
  for (const [cmd, options] of await commandsAndOptions()) {
    t.regex(r.stdout, new RegExp(`^\\.B ${cmd}( |$)`, 'm'), cmd);
    for (const o of options) t.true(r.stdout.includes(o.replace(/-/g, '\\-')), `${cmd} ${o}`);
  }
  t.regex(r.stdout, /^\.B 11\n.*completed with warnings/m);
  const groff = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: r.stdout, encoding: 'utf8' });
  if (groff.error) {
    t.log('no groff here: the page is not rendered');
    return;
  }
  t.is(groff.stderr, '', 'no roff warnings');
});
