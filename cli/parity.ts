// `fragfs parity STORE [--set K+M|off]`: turns a space's parity on (covering what is stored), off, or
// reports how much of the store its stripes cover. Needs no passphrase.

import type { Command } from 'commander';
import { parityCoverage, type ParityCoverage } from '../src/parity/coverage.js';
import { dropParity, openKeyless, setParitySettings } from '../src/parity/parity-admin.js';
import { formatParityShape, parseParityShape, type ParitySettings } from '../src/parity/parity-settings.js';
import { protectStore, type ProtectReport } from '../src/parity/protect.js';
import { DEFAULT_SPACE } from '../src/repo/repo.js';
import { FragfsError } from '../src/errors.js';
import { storeLocation } from '../src/remote/store-site.js';
import { action, formatBytes, printJson } from './common.js';

/** The parity store as fragfs.json keeps it: an absolute folder or a URL, never the store itself. */
export function parityStoreLocation(arg: string, storePath: string): string {
  const location = storeLocation(arg);
  if (location === storeLocation(storePath)) throw new FragfsError('USAGE', '--parity-store names the store itself; leave it out to keep parity there');
  return location;
}

interface ParityCliOptions {
  space?: string;
  set?: string;
  parityStore?: string;
  json?: boolean;
}

export function coverageLine(shape: ParitySettings | undefined, c: ParityCoverage): string {
  const head = shape ? `parity ${formatParityShape(shape)}` : 'parity off';
  const overhead = c.memberBytes > 0 ? ` (${((100 * c.parityBytes) / c.memberBytes).toFixed(1)} % of what they protect)` : '';
  const covered = `${c.members} objects (${formatBytes(c.memberBytes)}) in ${c.stripes} stripes, ${c.parityObjects} parity objects of ${formatBytes(c.parityBytes)}${overhead}`;
  const rest =
    c.unprotected === 0
      ? 'every stored object is in a stripe'
      : `${c.unprotected} objects (${formatBytes(c.unprotectedBytes)}) in no stripe${shape ? ' (the next write, or fragfs parity STORE --set, covers them)' : ''}`;
  const damaged = c.incomplete + c.unreadable > 0 ? `; ${c.incomplete} stripes lack parity objects and ${c.unreadable} parity objects are unreadable (fragfs repair)` : '';
  return `${head}: ${covered}; ${rest}${damaged}`;
}

export function registerParity(program: Command): void {
  program
    .command('parity')
    .description('Reed-Solomon parity over the stored objects: --set K+M turns it on and covers what is stored; without --set, reports coverage (no passphrase needed)')
    .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
    .option('--space <name>', 'the space inside the store', DEFAULT_SPACE)
    .option('--set <shape>', 'K+M: stripes of up to K objects with M parity objects (e.g. 10+2), or off')
    .option('--parity-store <location>', 'with --set: keep the parity objects in this folder or remote store URL instead of the store itself')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (storePath: string, opts: ParityCliOptions) => {
        const space = opts.space ?? DEFAULT_SPACE;
        const off = opts.set?.trim().toLowerCase() === 'off';
        if (opts.parityStore !== undefined && (opts.set === undefined || off)) throw new FragfsError('USAGE', '--parity-store goes with --set K+M');
        const parsed = opts.set === undefined || off ? undefined : parseParityShape(opts.set, '--set');
        const shape = parsed && opts.parityStore !== undefined ? { ...parsed, store: parityStoreLocation(opts.parityStore, storePath) } : parsed;
        // Turning parity off drops the parity objects where they are now; --set opens where they go.
        const k = await openKeyless(storePath, space, { readOnly: opts.set === undefined, ...(shape ? { settings: shape } : {}) });
        let settings = k.settings;
        let protectedNow: ProtectReport | undefined;
        let dropped: number | undefined;
        try {
          if (off) {
            await setParitySettings(k.location, space, undefined);
            settings = undefined;
            dropped = await dropParity(k);
          } else if (shape) {
            await setParitySettings(k.location, space, shape);
            settings = shape;
            const log = process.stderr.isTTY ? (l: string) => process.stderr.write(`${l}\n`) : undefined;
            protectedNow = await protectStore(k.store, space, shape, { parityStore: k.parityStore, cachePath: k.cachePath, ...(log ? { log } : {}) });
          }
          const c = await parityCoverage(k.store, space, k.cachePath, k.parityStore);
          if (opts.json) {
            printJson({ space, parity: settings ?? null, ...c, ...(protectedNow ? { protected: protectedNow } : {}), ...(dropped === undefined ? {} : { dropped }) });
            return;
          }
          if (dropped !== undefined) process.stdout.write(`parity turned off: ${dropped} parity objects deleted\n`);
          if (protectedNow) {
            const p = protectedNow;
            const mbps = p.ms > 0 ? ` at ${((p.memberBytes / 1e6) / (p.ms / 1000)).toFixed(1)} MB/s` : '';
            process.stdout.write(`protected ${p.members} objects (${formatBytes(p.memberBytes)}) in ${p.stripes} new stripes${mbps}${p.completed ? `, completed ${p.completed} stripes` : ''}\n`);
            for (const s of p.skipped) process.stdout.write(`not protected: ${s.kind} ${s.id}: ${s.why}\n`);
          }
          process.stdout.write(`${coverageLine(settings, c)}\n`);
        } finally {
          await k.close();
        }
      }),
    );
}
