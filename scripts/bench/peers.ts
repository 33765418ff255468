// The peers of a bench and which of them can run here: each is checked (installed, and for mounts a real
// trial mount), and one that cannot run is reported with its reason rather than failing the bench.

import { borgPeer } from './peer-borg.js';
import { fragfsBackupPeer, fragfsMountPeer, fragfsPeers } from './peer-fragfs.js';
import { gocryptfsPeer } from './peer-gocryptfs.js';
import { plainPeer } from './peer-plain.js';
import { rclonePeer } from './peer-rclone.js';
import { resticPeer } from './peer-restic.js';
import type { BackupPeer, MountPeer } from './peer.js';
import type { PeerInfo } from './results.js';

export const MOUNT_PEERS: MountPeer[] = [fragfsMountPeer, gocryptfsPeer, rclonePeer, plainPeer];
export const BACKUP_PEERS: BackupPeer[] = [fragfsBackupPeer, resticPeer, borgPeer];

export interface ReadyPeers {
  mount: MountPeer[];
  backup: BackupPeer[];
  infos: PeerInfo[];
}

/** The name `--baseline` gives the other build's peers. */
export const BASELINE_PEER = 'fragfs-base';

/** `baseline`: another build's dist/bin/main.js, run as a peer right after this build's fragfs. */
export async function checkPeers(skip: string[], log: (l: string) => void, baseline?: string): Promise<ReadyPeers> {
  const ready: ReadyPeers = { mount: [], backup: [], infos: [] };
  const check = async <P extends MountPeer | BackupPeer>(peers: P[], kind: 'mount' | 'backup', into: P[]): Promise<void> => {
    for (const p of peers) {
      if (skip.includes(p.name)) {
        ready.infos.push({ name: p.name, kind, available: false, reason: 'left out with --skip', setup: p.setup });
        continue;
      }
      const a = await p.check();
      if (a.ok) into.push(p);
      ready.infos.push(a.ok ? { name: p.name, kind, available: true, version: a.version, setup: p.setup } : { name: p.name, kind, available: false, reason: a.reason, setup: p.setup });
      log(`  ${kind.padEnd(6)} ${p.name.padEnd(9)} ${a.ok ? 'ok   ' + a.version : 'NOT RUN: ' + a.reason}`);
    }
  };
  const base = baseline ? fragfsPeers(BASELINE_PEER, baseline) : undefined;
  const withBase = <P>(peers: P[], b: P | undefined): P[] => (b ? [peers[0]!, b, ...peers.slice(1)] : peers);
  await check(withBase(MOUNT_PEERS, base?.mount), 'mount', ready.mount);
  await check(withBase(BACKUP_PEERS, base?.backup), 'backup', ready.backup);
  return ready;
}
