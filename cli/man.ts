// `fragfs man`: the fragfs(1) manual page in roff, made from the commands' own help (descriptions,
// arguments, options) and the exit codes of src/errors.ts, so the page and `--help` never disagree.
// `--output FILE` writes it where `npm pack` ships it (package.json "man").

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { BUG_EXIT_CODE, ERROR_CODES } from '../src/errors.js';
import { action } from './common.js';
import { visibleCommands } from './completion.js';

export function registerMan(program: Command): void {
  program
    .command('man')
    .description('print the fragfs(1) manual page (roff): fragfs man | man -l -')
    .option('--output <file>', 'write it to this file instead')
    .action(
      action(async (opts: { output?: string }) => {
        const page = manPage(program);
        if (opts.output === undefined) {
          process.stdout.write(page);
          return;
        }
        await mkdir(dirname(opts.output), { recursive: true });
        // A manual page is public text, not store data: readable like any installed file.
        await writeFile(opts.output, page, { mode: 0o644 });
      }),
    );
}

/** Text for roff: backslashes doubled, and a line starting with . or ' made literal. */
function esc(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

export function manPage(program: Command): string {
  const name = program.name();
  const out: string[] = [];
  out.push(`.TH ${name.toUpperCase()} 1 "" "${name} ${program.version() ?? ''}" "User Commands"`);
  out.push('.SH NAME', `${name} \\- ${esc(program.description())}`);
  out.push('.SH SYNOPSIS', `.B ${name}`, '.I command', '[\\fIoptions\\fR] [\\fIarguments\\fR]');
  out.push(
    '.SH DESCRIPTION',
    esc(
      'fragfs cuts files into blocks, compresses and encrypts each, and stores them under the hash of their bytes in a store (a folder, an LMDB file or a remote service). A store is mounted as a read-write folder, frozen into snapshots named by one meta key, and mounted again at any snapshot. A snapshot is given by its meta key (64 hex digits), a unique prefix of 8 or more hex digits, or its name.',
    ),
  );
  out.push('.SH COMMANDS');
  for (const c of visibleCommands(program)) {
    const args = c.registeredArguments.map((a) => {
      const n = `${a.name()}${a.variadic ? '...' : ''}`;
      return a.required ? `\\fI${esc(n)}\\fR` : `[\\fI${esc(n)}\\fR]`;
    });
    out.push('.TP', `.B ${esc(c.name())}${c.options.length > 0 ? ' [\\fIoptions\\fR]' : ''} ${args.join(' ')}`.trimEnd());
    out.push(esc(c.description()));
    if (c.aliases().length > 0) out.push('.br', `Also: ${c.aliases().map(esc).join(', ')}.`);
    for (const a of c.registeredArguments) {
      if (!a.description) continue;
      out.push('.RS', '.TP', `.I ${esc(a.name())}`, esc(a.description), '.RE');
    }
    for (const o of c.options) {
      out.push('.RS', '.TP', `.B ${esc(o.flags)}`, esc(o.description + (o.defaultValue !== undefined && typeof o.defaultValue !== 'object' && o.defaultValue !== false ? ` (default: ${String(o.defaultValue)})` : '')), '.RE');
    }
  }
  out.push(
    '.SH ENVIRONMENT',
    '.TP', '.B FRAGFS_PASSPHRASE', esc('the passphrase, when neither --passphrase-file nor a terminal gives it'),
    '.TP', '.B FRAGFS_CACHE_DIR, FRAGFS_CACHE_MAX', esc('where, and how much, this machine keeps of remote stores'),
    '.TP', '.B FRAGFS_RUNTIME_DIR', esc('where mount records and control sockets live'),
    '.TP', '.B FRAGFS_DEBUG', esc('print stack traces with errors'),
  );
  out.push('.SH EXIT STATUS', '.TP', '.B 0', 'success');
  const byCode = new Map<number, string[]>();
  for (const [, [, exit, meaning]] of Object.entries(ERROR_CODES)) byCode.set(exit, [...(byCode.get(exit) ?? []), meaning]);
  for (const [exit, meanings] of [...byCode].sort((a, b) => a[0] - b[0])) out.push('.TP', `.B ${exit}`, esc(meanings.join('; ')));
  out.push('.TP', `.B ${BUG_EXIT_CODE}`, 'an internal error (a bug): the message carries a trace to report');
  out.push(
    '.SH EXAMPLES',
    '.nf',
    esc(`${name} init ./vault
${name} put ./vault ~/photos --name monday --tag daily
${name} diff ./vault monday tuesday
${name} find ./vault '*.jpg'
${name} mount ./vault ~/v
${name} mount ./vault ~/history --all
mount -t fuse.fragfs /srv/vault /mnt/vault -o ro,allow_other,passphrase_file=/etc/fragfs/vault.pass`),
    '.fi',
  );
  out.push('.SH SEE ALSO', '.BR mount (8),', '.BR fstab (5),', '.BR fusermount (1)');
  return `${out.join('\n')}\n`;
}
