// A peer counts as available only when it really mounts here: one small write and read-back through a
// fresh mount, so a peer that is installed but cannot run (no fusermount3, no /dev/fuse) is reported
// with its reason instead of failing every step.

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmrf } from './fs-util.js';
import type { Availability, MountPeer } from './peer.js';
import { PeakRss } from './rss.js';

export async function trialMount(peer: MountPeer, version: string): Promise<Availability> {
  const workDir = await mkdtemp(join(tmpdir(), `fragfs-bench-trial-${peer.name}-`));
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 60_000);
  const rss = new PeakRss();
  let inst;
  try {
    inst = await peer.create({ signal: ctrl.signal, workDir, rss, dropCaches: false });
    await writeFile(join(inst.root, 'probe'), 'probe');
    await inst.remount();
    const back = await readFile(join(inst.root, 'probe'), 'utf8');
    if (back !== 'probe') return { ok: false, reason: `a trial mount read back ${JSON.stringify(back)}` };
    return { ok: true, version };
  } catch (e) {
    return { ok: false, reason: `a trial mount failed: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    clearTimeout(timer);
    await inst?.dispose().catch(() => undefined);
    rss.stop();
    await rmrf(workDir);
  }
}
