// The mount half of the demo: a live read-write folder, a snapshot of it, the snapshot mounted
// read-only, and a copy of the store mounted elsewhere. Every mount is unmounted, also on failure.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface MountStoryTools {
  store: string;
  work: string;
  sample: string;
  fragfs: (...args: string[]) => string;
  sh: (cmd: string) => string;
  say: (text: string) => void;
}

export async function mountStory({ store, work, sample, fragfs, sh, say }: MountStoryTools): Promise<void> {
  const live = join(work, 'live');
  const old = join(work, 'old');
  const elsewhere = join(work, 'elsewhere');
  await mkdir(live);
  await mkdir(old);
  await mkdir(elsewhere);
  const mounted: string[] = [];
  const unmount = (mnt: string): void => {
    fragfs('umount', mnt);
    mounted.splice(mounted.indexOf(mnt), 1);
  };
  try {
    say('Mount the store as a read-write folder and use it with ordinary tools');
    fragfs('mount', store, live, '--background');
    mounted.push(live);
    sh(`cp -a ${sample} ${live}/sample && echo 'a note written in the mount' > ${live}/hello.txt && ls -la ${live}`);

    say('Freeze the whole live tree into one meta key, while it is mounted');
    const key = fragfs('snapshot', store, '--name', 'monday').trim().split('\n').pop()!;
    sh(`echo 'changed after the snapshot' > ${live}/hello.txt`);
    unmount(live);

    say('Mount the snapshot read-only: it is exactly as it was');
    fragfs('mount', store, old, '--snapshot', 'monday', '--background');
    mounted.push(old);
    sh(`cat ${old}/hello.txt && diff -r --no-dereference ${sample} ${old}/sample && echo 'snapshot identical to the sample'`);
    sh(`touch ${old}/new-file 2>&1 || echo 'read-only, as it should be'`);
    unmount(old);

    say('Copy the store folder somewhere else and mount the copy there');
    sh(`cp -a ${store} ${work}/vault-copy`);
    fragfs('mount', join(work, 'vault-copy'), elsewhere, '--background');
    mounted.push(elsewhere);
    sh(`cat ${elsewhere}/hello.txt && diff -r --no-dereference ${sample} ${elsewhere}/sample && echo 'the copy shows the same tree'`);
    unmount(elsewhere);
    fragfs('snapshots', store);
    say(`Meta key of the mounted tree's snapshot: ${key}`);
  } finally {
    for (const mnt of [...mounted]) {
      try {
        fragfs('umount', mnt);
      } catch {
        sh(`fusermount -u ${mnt} || true`);
      }
    }
  }
}
