// A real tree for put/get tests: a copy of npm's own source (thousands of files) when this machine
// has it, plus what a real home folder holds: symlinks (relative, absolute, dangling), an empty
// folder, an executable, hard links, an empty file, a sparse file, odd names and a 20 MB random file.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, mkdir, open, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export function npmSourceDir(): string | undefined {
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const candidates = [r.stdout?.trim() ? join(r.stdout.trim(), 'npm') : '', '/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm'];
  return candidates.find((c) => c && existsSync(join(c, 'package.json')));
}

export async function makeSampleTree(root: string, o: { npm?: boolean; randomMiB?: number } = {}): Promise<void> {
  await mkdir(root, { recursive: true });
  const npm = o.npm === false ? undefined : npmSourceDir();
  if (npm) {
    const r = spawnSync('cp', ['-a', npm, join(root, 'npm')]);
    if (r.status !== 0) throw new Error(`cp -a ${npm} failed: ${r.stderr}`);
  } else {
    for (let i = 0; i < 300; i++) {
      const p = join(root, 'src', `d${i % 17}`, `f${i}.js`);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, `// file ${i}\n${'export const x = 1;\n'.repeat(i)}`);
    }
  }
  await mkdir(join(root, 'empty-folder'));
  await mkdir(join(root, 'deep', 'a', 'b', 'c', 'd'), { recursive: true });
  await writeFile(join(root, 'deep', 'a', 'b', 'c', 'd', 'leaf.txt'), 'leaf\n');
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho ok\n');
  await chmod(join(root, 'run.sh'), 0o755);
  await writeFile(join(root, 'private.txt'), 'only me\n');
  await chmod(join(root, 'private.txt'), 0o600);
  await writeFile(join(root, 'empty-file'), '');
  await writeFile(join(root, 'naïve café ✓.txt'), 'unicode name\n');
  await writeFile(join(root, 'random.bin'), randomBytes((o.randomMiB ?? 20) * 1024 * 1024));
  await writeFile(join(root, 'original.txt'), 'one inode, two names\n');
  await link(join(root, 'original.txt'), join(root, 'deep', 'hardlink.txt'));
  await symlink('run.sh', join(root, 'relative-link'));
  await symlink('/etc/hostname', join(root, 'absolute-link'));
  await symlink('does/not/exist', join(root, 'dangling-link'));
  await symlink('deep/a', join(root, 'dir-link'));
  // A sparse file: 5 MiB hole, 4 KiB of data, then a hole to 9 MiB.
  const fh = await open(join(root, 'sparse.img'), 'w');
  await fh.write(Buffer.alloc(4096, 7), 0, 4096, 5 * 1024 * 1024);
  await fh.truncate(9 * 1024 * 1024);
  await fh.close();
  await utimes(join(root, 'private.txt'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
}
