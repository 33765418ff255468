// `fragfs forget STORE [KEY|NAME...] [--keep-* ...] [--gc]`: removes the refs of the snapshots given
// by hand and of those no retention policy keeps. Only refs go: the fragments stay until a gc (a
// later one, or the one --gc runs in the same opening).

import type { Command } from 'commander';
import { FragfsError, fromFsError } from '../src/errors.js';
import type { RefObject } from '../src/fragment/tree-format.js';
import {
  formatKeepDuration,
  isEmptyPolicy,
  parseKeepCount,
  parseKeepDuration,
  planForget,
  type ForgetPolicy,
  type PolicySnapshot,
} from '../src/repo/forget-policy.js';
import type { Repo } from '../src/repo/repo.js';
import { DEFAULT_WAIT_MS } from '../src/gc/gc.js';
import { action, addStoreOptions, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';
import { gcSummary, gcWithStatus } from './gc.js';

interface ForgetCliOptions extends StoreOptions {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepName?: boolean;
  dryRun?: boolean;
  json?: boolean;
  gc?: boolean;
  progress?: boolean;
}

/** A ref as the policy sees it, with the ref kept for printing. */
interface RefSnapshot extends PolicySnapshot {
  ref: RefObject;
}

const GC_NOTE = 'forget removes refs only: the fragments stay in the store until a later gc frees them';

const HELP_AFTER = `
Snapshots given by hand (meta key, unique prefix of 8+ hex digits, or name: the newest snapshot of
that name) are removed. With --keep-* options, every other snapshot that no option keeps is removed
too; a snapshot kept by any option is kept. Giving neither snapshots nor a --keep-* option is an error.

The options follow restic forget. --keep-hourly/daily/weekly/monthly/yearly N keep the newest
snapshot of each of the N most recent hours (days, ISO weeks from Monday, months, years) that have
snapshots, and also the oldest snapshot when N is not used up; N may be "unlimited", and 0 is off.
--keep-name alone is a policy too: it keeps the named snapshots and removes every other. Hours, days,
weeks, months and years are counted in UTC, whatever the machine's time zone, so a store gives the
same answer everywhere. --keep-within counts back from the newest snapshot, not from now.

forget removes refs only: the snapshot no longer lists, and its name no longer resolves, but its
fragments (data and metadata) stay in the store until a later gc frees them; until then its full
meta key still reads. --gc runs that gc at once, in the same process (one passphrase, one opening),
and prints its report after the decisions.

Examples:
  fragfs forget ./vault 1a2b3c4d monday          # these two
  fragfs forget ./vault --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-name --dry-run
  fragfs forget ./vault --keep-last 10 --gc        # and free their space now
`;

export function registerForget(program: Command): void {
  addStoreOptions(
    program
      .command('forget')
      .description('remove snapshots, given by hand or by retention policy (only their refs: fragments are freed by a later gc)')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('[snapshots...]', 'meta keys, key prefixes (8+ hex digits) or names of snapshots to remove')
      .option('--keep-last <n>', 'keep the n newest snapshots')
      .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours (UTC) that have one')
      .option('--keep-daily <n>', 'keep the newest snapshot of each of the last n days (UTC) that have one')
      .option('--keep-weekly <n>', 'keep the newest snapshot of each of the last n ISO weeks (UTC) that have one')
      .option('--keep-monthly <n>', 'keep the newest snapshot of each of the last n months (UTC) that have one')
      .option('--keep-yearly <n>', 'keep the newest snapshot of each of the last n years (UTC) that have one')
      .option('--keep-within <duration>', 'keep every snapshot newer than the newest one minus duration (e.g. 2d, 1y2m3d4h: y m d h)')
      .option('--keep-name', 'keep every named snapshot (one is then removed only when given by hand)')
      .option('--dry-run', 'print what would be kept and removed; remove nothing')
      .option('--json', 'print the decisions as JSON')
      .option('--gc', "then free what no snapshot needs any more, as `fragfs gc` does (restic's forget --prune), in the same run")
      .option('--no-progress', 'no status line for --gc, even on a terminal')
      .addHelpText('after', HELP_AFTER),
  ).action(
    action(async (store: string, given: string[], opts: ForgetCliOptions) => {
      // Usage first: a wrong option costs no passphrase and opens nothing.
      const policy = policyOf(opts);
      if (given.length === 0 && isEmptyPolicy(policy)) {
        throw new FragfsError('USAGE', 'forget: give the snapshots to remove, or a --keep-* policy (see fragfs forget --help)');
      }
      const dryRun = opts.dryRun === true;
      if (dryRun && opts.gc) {
        throw new FragfsError('USAGE', 'forget: --gc frees what the removed snapshots held, and --dry-run removes none; run fragfs gc --dry-run after a forget instead');
      }
      await withRepo(store, { ...opts, readOnly: dryRun }, async (repo) => {
        const refs = await repo.listRefs();
        const keys = await resolveGiven(repo, refs, given);
        const snapshots: RefSnapshot[] = refs.map((ref) => ({
          key: ref.snapshot,
          ...(ref.name === undefined ? {} : { name: ref.name }),
          createdMs: ref.createdMs,
          ref,
        }));
        const plan = planForget(snapshots, { given: keys, policy, nowMs: Date.now() });
        if (!dryRun) await removeRefs(repo, plan.remove.map((s) => s.key));
        // One opening for both (its key derivation is most of a small forget's time).
        const gc = opts.gc ? await gcWithStatus(repo, { dryRun: false, waitMs: DEFAULT_WAIT_MS, verbose: false, progress: opts.progress !== false && !opts.json }) : undefined;
        // Oldest first, as `snapshots` lists them.
        const rows = [...plan.decisions].reverse();
        if (opts.json) {
          printJson({
            dryRun,
            total: rows.length,
            kept: plan.keep.length,
            removed: plan.remove.length,
            snapshots: rows.map((d) => ({
              key: d.snapshot.key,
              name: d.snapshot.name ?? null,
              time: new Date(d.snapshot.createdMs).toISOString(),
              logicalBytes: d.snapshot.ref.logicalBytes,
              action: d.keep ? 'keep' : 'remove',
              reasons: d.reasons,
            })),
            ...(gc ? { gc } : {}),
          });
          return;
        }
        if (rows.length > 0) {
          const nameWidth = Math.max(4, ...rows.map((d) => (d.snapshot.name ?? '-').length));
          process.stdout.write(`ACTION  ${'TIME (UTC)'.padEnd(19)}  ${'NAME'.padEnd(nameWidth)}  ${'SIZE'.padStart(10)}  ${'KEY'.padEnd(64)}  REASONS\n`);
          for (const d of rows) {
            const when = new Date(d.snapshot.createdMs).toISOString().replace('T', ' ').slice(0, 19);
            process.stdout.write(
              `${(d.keep ? 'keep' : 'remove').padEnd(6)}  ${when}  ${(d.snapshot.name ?? '-').padEnd(nameWidth)}  ` +
                `${formatBytes(d.snapshot.ref.logicalBytes).padStart(10)}  ${d.snapshot.key}  ${d.reasons.join(', ')}\n`,
            );
          }
        }
        const n = plan.remove.length;
        const summary = dryRun
          ? `would remove ${n} of ${rows.length} snapshots (--dry-run: nothing was removed)`
          : `removed ${n} of ${rows.length} snapshots`;
        if (gc) process.stdout.write(`${summary}\n${gcSummary(gc)}`);
        else process.stdout.write(`${summary}; ${GC_NOTE}\n`);
      });
    }),
  );
}

/** The --keep-* options, checked: a bad count or duration is a usage error naming the option. */
function policyOf(opts: ForgetCliOptions): ForgetPolicy {
  const policy: ForgetPolicy = {};
  const counts = [
    ['last', opts.keepLast, '--keep-last'],
    ['hourly', opts.keepHourly, '--keep-hourly'],
    ['daily', opts.keepDaily, '--keep-daily'],
    ['weekly', opts.keepWeekly, '--keep-weekly'],
    ['monthly', opts.keepMonthly, '--keep-monthly'],
    ['yearly', opts.keepYearly, '--keep-yearly'],
  ] as const;
  for (const [field, text, option] of counts) {
    if (text !== undefined) policy[field] = parseKeepCount(text, option);
  }
  if (opts.keepWithin !== undefined) {
    policy.within = parseKeepDuration(opts.keepWithin, '--keep-within');
    if (formatKeepDuration(policy.within) === '') {
      throw new FragfsError('USAGE', `--keep-within ${JSON.stringify(opts.keepWithin)} keeps nothing: give a duration longer than 0`);
    }
  }
  if (opts.keepName === true) policy.keepNamed = true;
  return policy;
}

/**
 * The meta keys of the snapshots given by hand, each resolved as `get` and `mount --snapshot` do
 * (same ambiguity errors). Every one is resolved before anything is removed, so a typo removes
 * nothing. A full key must name a listed snapshot: a 64-digit id of some other metadata fragment,
 * or of a snapshot forgotten already, has no ref to remove.
 */
async function resolveGiven(repo: Repo, refs: readonly RefObject[], given: readonly string[]): Promise<Set<string>> {
  const listed = new Set(refs.map((r) => r.snapshot));
  const keys = new Set<string>();
  for (const text of given) {
    const key = await repo.resolveSnapshot(text);
    if (!listed.has(key)) {
      throw new FragfsError('NOT_FOUND', `no snapshot with meta key ${key} is listed in the store (fragfs snapshots lists them)`);
    }
    keys.add(key);
  }
  return keys;
}

/** Deletes refs through the store's ref namespace, then makes the deletions durable. */
async function removeRefs(repo: Repo, keys: readonly string[]): Promise<void> {
  let done = 0;
  try {
    for (const key of keys) {
      await repo.store.delete(repo.refNs, key);
      done++;
    }
  } catch (e) {
    const err = fromFsError(e, 'removing a snapshot ref');
    // Which refs are gone matters to whoever runs it again: `snapshots` shows the rest.
    throw new FragfsError(err.code, `${err.message} (${done} of ${keys.length} snapshots were removed before)`, { cause: err });
  }
  if (keys.length > 0) await repo.sync();
}
