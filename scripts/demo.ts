// The README's main command: fragfs's whole story on an embedded default, run as a user would run
// it, each command echoed with what it printed. Everything happens in a temporary folder that is
// removed at the end (unless --keep).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'main.js');
const keep = process.argv.includes('--keep');
const env = { ...process.env, FRAGFS_PASSPHRASE: 'correct horse battery staple' };

function say(text: string): void {
  process.stdout.write(`\n# ${text}\n`);
}

/** Runs `fragfs ...args`, echoes it and its output, and returns stdout; a failure ends the demo. */
function fragfs(...args: string[]): string {
  process.stdout.write(`$ fragfs ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.stdout) process.stdout.write(r.stdout.replace(/^/gm, '  '));
  if (r.stderr) process.stdout.write(r.stderr.replace(/^/gm, '  '));
  if (r.status !== 0) throw new Error(`fragfs ${args[0]} exited with ${r.status}`);
  return r.stdout;
}

function sh(cmd: string): string {
  process.stdout.write(`$ ${cmd}\n`);
  const r = spawnSync('bash', ['-c', cmd], { env, encoding: 'utf8' });
  if (r.stdout) process.stdout.write(r.stdout.replace(/^/gm, '  '));
  if (r.stderr) process.stdout.write(r.stderr.replace(/^/gm, '  '));
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}`);
  return r.stdout;
}

/** A small tree with what real trees have: text, binary, nesting, an empty folder, a symlink, an executable. */
async function makeSampleTree(root: string): Promise<void> {
  await mkdir(join(root, 'notes'), { recursive: true });
  await mkdir(join(root, 'photos', '2026'), { recursive: true });
  await mkdir(join(root, 'empty'));
  for (let i = 0; i < 20; i++) {
    await writeFile(join(root, 'notes', `day-${String(i).padStart(2, '0')}.txt`), `Day ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(200 + i)}\n`);
  }
  let seed = 42;
  const random = Buffer.alloc(3 * 1024 * 1024 + 12345);
  for (let i = 0; i < random.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    random[i] = seed >>> 24;
  }
  await writeFile(join(root, 'photos', '2026', 'beach.raw'), random);
  await writeFile(join(root, 'photos', '2026', 'beach-copy.raw'), random);
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hello from fragfs\n', { mode: 0o755 });
  await symlink('notes/day-00.txt', join(root, 'latest-note'));
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'fragfs-demo-'));
  const store = join(work, 'vault');
  const sample = join(work, 'sample');
  try {
    say('A sample tree: notes, two copies of a 3 MiB photo, an empty folder, a symlink, an executable');
    await makeSampleTree(sample);
    sh(`du -sh ${sample} && find ${sample} | wc -l`);

    say('Create an encrypted store (the passphrase comes from FRAGFS_PASSPHRASE here)');
    fragfs('init', store);

    say('Put the tree in: the last line is its meta key');
    const key = fragfs('put', store, sample, '--name', 'first').trim().split('\n').pop()!;

    say('List and read it without restoring');
    fragfs('ls', store, key);
    fragfs('cat', store, `${key}/run.sh`);

    say('Get it back elsewhere, byte for byte');
    fragfs('get', store, key, join(work, 'restored'));
    sh(`diff -r --no-dereference ${sample} ${join(work, 'restored')} && echo identical`);

    say('Put the same tree again: nothing new but metadata');
    fragfs('put', store, sample, '--name', 'second');

    say('What the store holds: the duplicate photo and the second put cost nothing');
    fragfs('stats', store);
    fragfs('verify', store);
    say('The store holds no plaintext: grep for a file name and for file content finds nothing');
    sh(`! grep -rq 'quick brown fox' ${store} && ! grep -rq 'beach.raw' ${store} && echo 'no plaintext in the store'`);

    const mountDemo = join(dirname(CLI), 'mount.js');
    if (existsSync(mountDemo) && existsSync('/dev/fuse')) {
      const { mountStory } = (await import('./demo-mount.js')) as { mountStory: (o: { store: string; work: string; sample: string; fragfs: typeof fragfs; sh: typeof sh; say: typeof say }) => Promise<void> };
      await mountStory({ store, work, sample, fragfs, sh, say });
    } else {
      say('(no FUSE here: the mount part of the demo is skipped)');
    }
    say(`Meta key of the first put: ${key}`);
  } finally {
    if (keep) process.stdout.write(`\nkept ${work}\n`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
