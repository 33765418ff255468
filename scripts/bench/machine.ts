// Which machine the figures came from, for the report and the README's summary table.

import { readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { run } from './proc.js';

export interface MachineInfo {
  host: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  disk: string;
}

export async function machineInfo(dir: string): Promise<MachineInfo> {
  let os = 'linux';
  try {
    os = /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* keep */
  }
  const df = await run(['df', '-T', dir], { allowFail: true });
  const dfLine = df.stdout.trim().split('\n')[1]?.split(/\s+/) ?? [];
  return {
    host: hostname(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / (1 << 30)),
    kernel: release(),
    os,
    node: process.version,
    disk: dfLine.length > 1 ? `${dfLine[1]} on ${dfLine[0]}` : 'unknown',
  };
}
