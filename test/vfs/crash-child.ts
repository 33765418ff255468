// Child process for the crash test: writes through a live vfs on a real store, fsyncs part of it,
// says "ready" and waits to be killed with SIGKILL (no close, no flush).

import { Repo } from '../../src/repo/repo.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { PathVfs } from './path-vfs.js';

const [storePath, statePath, passphrase] = process.argv.slice(2) as [string, string, string];
const repo = await Repo.open({ storePath, passphrase });
const vfs = new PathVfs(await LiveVfs.open({ repo, statePath, owner: { uid: 1000, gid: 1000 } }));
const me = { uid: 1000, gid: 1000 };
await vfs.mkdir('/dir', 0o755, me);
const synced = Buffer.alloc(300_000);
for (let i = 0; i < synced.length; i++) synced[i] = (i * 31 + 7) & 0xff;
const fh = await vfs.create('/dir/synced', 0o644, 1, me);
await vfs.write('/dir/synced', fh, synced, synced.length, 0);
await vfs.fsync('/dir/synced', fh, false);
// Left open and unsynced on purpose: only what fsync covered is promised.
const fh2 = await vfs.create('/dir/unsynced', 0o644, 1, me);
await vfs.write('/dir/unsynced', fh2, Buffer.alloc(1000, 1), 1000, 0);
await vfs.symlink('synced', '/dir/link', me);
process.stdout.write('ready\n');
setInterval(() => undefined, 1000);
