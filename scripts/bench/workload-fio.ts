// Workload (d): random 4 KiB reads, then random 4 KiB writes (fsync at the end), with fio on one file in
// the folder, time-based; the figure is fio's IOPS of each job.

import { join } from 'node:path';
import type { MountInstance, StepContext } from './peer.js';
import { run, which } from './proc.js';
import type { MountWorkload, StepOutput } from './workload.js';

let runtimeMs = 1000;
let sizeBytes = 0;

interface FioJob {
  jobname: string;
  read: { iops: number };
  write: { iops: number };
}

export const fioWorkload: MountWorkload = {
  id: 'fio',
  title: 'Random 4 KiB I/O (fio)',
  short: 'random 4 KiB I/O',
  peerKind: 'mount',
  describe: (s) =>
    `(d) fio, psync engine, bs=4k, one ${s.fioBytes / (1 << 20)} MiB file laid out first: randread for ${s.fioMs / 1000} s, then randwrite for ${s.fioMs / 1000} s with fsync at the end.`,
  metrics: [
    { id: 'randRead', section: 'd', label: 'random 4 KiB read', unit: 'IOPS', better: 'higher' },
    { id: 'randWrite', section: 'd', label: 'random 4 KiB write', unit: 'IOPS', better: 'higher' },
  ],
  async unavailable() {
    return (await which('fio')) ? undefined : 'fio is not installed (--install-peers)';
  },
  async prepare({ sizes }) {
    runtimeMs = sizes.fioMs;
    sizeBytes = sizes.fioBytes;
  },
  async run(inst: MountInstance, ctx: StepContext): Promise<StepOutput> {
    const args = [
      'fio', '--output-format=json', `--filename=${join(inst.root, 'fio.dat')}`, `--size=${sizeBytes}`,
      '--bs=4k', '--ioengine=psync', '--time_based', `--runtime=${runtimeMs}ms`, '--randrepeat=1',
      '--name=randread', '--rw=randread',
      '--name=randwrite', '--stonewall', '--rw=randwrite', '--end_fsync=1',
    ];
    const r = await run(args, { signal: ctx.signal, cwd: inst.root });
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: FioJob[] };
    const job = (n: string): FioJob => {
      const j = json.jobs.find((x) => x.jobname === n);
      if (!j) throw new Error(`fio printed no job ${n}`);
      return j;
    };
    return { values: { randRead: job('randread').read.iops, randWrite: job('randwrite').write.iops } };
  },
};
