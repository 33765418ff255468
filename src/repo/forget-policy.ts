// Which snapshots `fragfs forget` keeps and which it removes: the retention policies (--keep-last,
// --keep-hourly ... --keep-yearly, --keep-within, --keep-name) and the snapshots given by hand. Pure
// arithmetic on (key, name, time); the command does the reading and the removing.
//
// The policies follow restic's rules (internal/restic/snapshot_policy.go, restic 0.17) so that what
// a restic user expects is what happens, with one deliberate difference: calendar buckets are taken
// in UTC, not in the local time zone, so the same store gives the same answer on every machine.

import { FragfsError } from '../errors.js';

/** What the policy needs of a snapshot (a ref): the caller's own objects pass through unchanged. */
export interface PolicySnapshot {
  key: string;
  name?: string;
  createdMs: number;
}

/** A calendar duration as restic writes it (`1y2m3d4h`): each part counted on the calendar, in UTC. */
export interface KeepDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/**
 * The --keep-* options. A count keeps the newest snapshot of each of that many most recent buckets
 * that hold snapshots; 0 or absent is off, Infinity ("unlimited") keeps one per bucket for all time.
 */
export interface ForgetPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Every snapshot newer than this, counted back from the newest snapshot (not from now). */
  within?: KeepDuration;
  /** Every snapshot that has a name. */
  keepNamed?: boolean;
}

export interface ForgetDecision<T extends PolicySnapshot> {
  snapshot: T;
  keep: boolean;
  /** Why it is kept (every rule that keeps it), or why it goes; never empty. */
  reasons: string[];
}

export interface ForgetPlan<T extends PolicySnapshot> {
  /** Newest first, as the rules are applied. */
  decisions: ForgetDecision<T>[];
  keep: T[];
  remove: T[];
}

export const REASON_GIVEN = 'given on the command line';
export const REASON_NOT_GIVEN = 'not given on the command line';
export const REASON_NO_POLICY = 'kept by no policy';
export const REASON_NAMED = 'named';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Beyond this a duration part means "everything" anyway; it keeps the date arithmetic finite. */
const MAX_DURATION_PART = 100_000;
const DURATION_RE = /^(?:\d+[ymdh])+$/;

/** A bucket: which snapshots count as one (restic's "bucker"), and the reason it keeps by. */
interface BucketRule {
  count: number;
  bucketOf: (createdMs: number, nr: number) => number;
  reason: string;
}

/** True when no --keep-* option is in force: such a policy keeps everything (restic's Empty). */
export function isEmptyPolicy(p: ForgetPolicy): boolean {
  return (
    !p.last &&
    !p.hourly &&
    !p.daily &&
    !p.weekly &&
    !p.monthly &&
    !p.yearly &&
    (p.within === undefined || isZeroDuration(p.within)) &&
    p.keepNamed !== true
  );
}

/**
 * What to do with each snapshot: the ones in `given` go whatever a policy says; every other one is
 * kept when `policy` keeps it, and goes when it does not. With an empty policy only `given` goes.
 * The policy is applied to the snapshots not given, so a snapshot removed by hand does not use up
 * a bucket that another snapshot of the same day (week, ...) would fill. `nowMs` is only used to
 * leave snapshots dated in the future out of "the newest" (restic's rule).
 */
export function planForget<T extends PolicySnapshot>(
  list: readonly T[],
  o: { given?: ReadonlySet<string>; policy?: ForgetPolicy; nowMs: number },
): ForgetPlan<T> {
  const given = o.given ?? new Set<string>();
  const policy = o.policy ?? {};
  checkSnapshots(list);
  const rest = list.filter((s) => !given.has(s.key));
  const byHand: ForgetDecision<T>[] = list.filter((s) => given.has(s.key)).map((s) => ({ snapshot: s, keep: false, reasons: [REASON_GIVEN] }));
  const rules: ForgetDecision<T>[] = isEmptyPolicy(policy)
    ? rest.map((s) => ({ snapshot: s, keep: true, reasons: [REASON_NOT_GIVEN] }))
    : applyForgetPolicy(rest, policy, o.nowMs).decisions;
  const decisions = sortNewestFirst([...byHand, ...rules], (d) => d.snapshot);
  return {
    decisions,
    keep: decisions.filter((d) => d.keep).map((d) => d.snapshot),
    remove: decisions.filter((d) => !d.keep).map((d) => d.snapshot),
  };
}

/**
 * restic's ApplyPolicy with UTC buckets. Snapshots are walked newest first; each bucket rule keeps
 * a snapshot whose bucket differs from the last one it kept, while its count lasts, and also the
 * oldest snapshot of all when its count is not used up (restic 0.17: the history kept is as long as
 * the counts allow). --keep-within keeps what is newer than the newest snapshot minus the duration.
 * A snapshot kept by any rule is kept; an empty policy keeps everything.
 */
export function applyForgetPolicy<T extends PolicySnapshot>(list: readonly T[], policy: ForgetPolicy, nowMs: number): ForgetPlan<T> {
  checkSnapshots(list);
  checkPolicy(policy);
  if (!Number.isFinite(nowMs)) throw new FragfsError('INVALID', `forget policy: the time now is not a number: ${String(nowMs)}`);
  const sorted = sortNewestFirst(list, (s) => s);
  if (isEmptyPolicy(policy)) {
    const decisions = sorted.map((s) => ({ snapshot: s, keep: true, reasons: ['the policy is empty'] }));
    return { decisions, keep: [...sorted], remove: [] };
  }
  const rules: BucketRule[] = [
    { count: policy.last ?? 0, bucketOf: (_ms, nr) => nr, reason: 'last snapshot' },
    { count: policy.hourly ?? 0, bucketOf: (ms) => Math.floor(ms / HOUR_MS), reason: 'hourly snapshot' },
    { count: policy.daily ?? 0, bucketOf: (ms) => Math.floor(ms / DAY_MS), reason: 'daily snapshot' },
    { count: policy.weekly ?? 0, bucketOf: isoWeekOf, reason: 'weekly snapshot' },
    { count: policy.monthly ?? 0, bucketOf: (ms) => yearOf(ms) * 12 + new Date(ms).getUTCMonth(), reason: 'monthly snapshot' },
    { count: policy.yearly ?? 0, bucketOf: yearOf, reason: 'yearly snapshot' },
  ];
  const buckets = rules.map((b) => ({ ...b, last: undefined as number | undefined }));

  const within = policy.within !== undefined && !isZeroDuration(policy.within) ? policy.within : undefined;
  const withinAfterMs = within === undefined ? undefined : withinCutoffMs(sorted, within, nowMs);

  const decisions: ForgetDecision<T>[] = [];
  sorted.forEach((snap, nr) => {
    const reasons: string[] = [];
    // Like restic's --keep-tag: a reason of its own that takes nothing from the counts.
    if (policy.keepNamed === true && snap.name !== undefined) reasons.push(REASON_NAMED);
    if (within !== undefined && snap.createdMs > withinAfterMs!) reasons.push(`within ${formatKeepDuration(within)}`);
    for (const b of buckets) {
      if (b.count <= 0) continue;
      const bucket = b.bucketOf(snap.createdMs, nr);
      if (bucket !== b.last || nr === sorted.length - 1) {
        b.last = bucket;
        b.count--; // Infinity stays Infinity: "unlimited".
        reasons.push(b.reason);
      }
    }
    decisions.push(reasons.length > 0 ? { snapshot: snap, keep: true, reasons } : { snapshot: snap, keep: false, reasons: [REASON_NO_POLICY] });
  });
  return {
    decisions,
    keep: decisions.filter((d) => d.keep).map((d) => d.snapshot),
    remove: decisions.filter((d) => !d.keep).map((d) => d.snapshot),
  };
}

/** `--keep-last 3`, `--keep-daily unlimited`: a whole number of 0 or more, or "unlimited" (Infinity). */
export function parseKeepCount(text: string, option: string): number {
  const t = text.trim();
  if (t === 'unlimited') return Infinity;
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new FragfsError('USAGE', `${option} ${JSON.stringify(text)}: give a whole number of 0 or more, or "unlimited"`);
  }
  return n;
}

/** `--keep-within 1y2m3d4h`: years, months, days and hours (restic's units), each at most once. */
export function parseKeepDuration(text: string, option: string): KeepDuration {
  const t = text.trim();
  const bad = (why: string) =>
    new FragfsError('USAGE', `${option} ${JSON.stringify(text)}: ${why} (a duration such as 2d, 12h or 1y2m3d4h: y years, m months, d days, h hours)`);
  if (!DURATION_RE.test(t)) throw bad('not a duration');
  const d: KeepDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  for (const [, digits, unit] of t.matchAll(/(\d+)([ymdh])/g)) {
    if (seen.has(unit!)) throw bad(`the unit ${unit} is given twice`);
    seen.add(unit!);
    const n = Number(digits);
    if (!Number.isSafeInteger(n) || n > MAX_DURATION_PART) throw bad(`${digits} is more than ${MAX_DURATION_PART}`);
    const field = ({ y: 'years', m: 'months', d: 'days', h: 'hours' } as const)[unit as 'y' | 'm' | 'd' | 'h'];
    d[field] = n;
  }
  return d;
}

/** restic's spelling: `1y2m3d4h`, zero parts left out (so `0d` prints as the empty string). */
export function formatKeepDuration(d: KeepDuration): string {
  return `${d.years ? `${d.years}y` : ''}${d.months ? `${d.months}m` : ''}${d.days ? `${d.days}d` : ''}${d.hours ? `${d.hours}h` : ''}`;
}

function isZeroDuration(d: KeepDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/**
 * Snapshots newer than this are within the duration: the newest snapshot not dated in the future,
 * moved back on the calendar (Go's AddDate: a month back from 31 March is 3 March, as Date does it)
 * and then back by the hours. With no snapshot before now, everything is within (restic's zero time).
 */
function withinCutoffMs(sorted: readonly PolicySnapshot[], d: KeepDuration, nowMs: number): number {
  const latestMs = sorted.find((s) => s.createdMs < nowMs)?.createdMs;
  if (latestMs === undefined) return -Infinity;
  const t = new Date(latestMs);
  // setUTCFullYear, not Date.UTC: Date.UTC reads the years 0-99 as 1900-1999.
  t.setUTCFullYear(t.getUTCFullYear() - d.years, t.getUTCMonth() - d.months, t.getUTCDate() - d.days);
  const cutoffMs = t.getTime() - d.hours * HOUR_MS;
  // Past the calendar's end (a very long duration): every snapshot is within it.
  return Number.isFinite(cutoffMs) ? cutoffMs : -Infinity;
}

function yearOf(ms: number): number {
  return new Date(ms).getUTCFullYear();
}

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday) as year * 100 + week. */
function isoWeekOf(ms: number): number {
  const dayMs = Math.floor(ms / DAY_MS) * DAY_MS;
  const mondayBased = (new Date(dayMs).getUTCDay() + 6) % 7;
  const thursdayMs = dayMs + (3 - mondayBased) * DAY_MS;
  const isoYear = yearOf(thursdayMs);
  const jan1 = new Date(0);
  jan1.setUTCFullYear(isoYear, 0, 1);
  const week = 1 + Math.floor((thursdayMs - jan1.getTime()) / (7 * DAY_MS));
  return isoYear * 100 + week;
}

/** Newest first; equal times by key, so the answer never depends on the order refs were listed in. */
function sortNewestFirst<X>(items: readonly X[], snap: (x: X) => PolicySnapshot): X[] {
  return [...items].sort((a, b) => {
    const sa = snap(a);
    const sb = snap(b);
    return sb.createdMs - sa.createdMs || (sa.key < sb.key ? -1 : sa.key > sb.key ? 1 : 0);
  });
}

function checkSnapshots(list: readonly PolicySnapshot[]): void {
  const keys = new Set<string>();
  for (const s of list) {
    if (typeof s.key !== 'string' || s.key.length === 0) throw new FragfsError('INVALID', 'forget policy: a snapshot without a key');
    if (!Number.isFinite(s.createdMs)) throw new FragfsError('INVALID', `forget policy: snapshot ${s.key} has no valid time`);
    // Duplicates would be counted twice by --keep-last and removed twice.
    if (keys.has(s.key)) throw new FragfsError('INVALID', `forget policy: snapshot ${s.key} is listed twice`);
    keys.add(s.key);
  }
}

function checkPolicy(p: ForgetPolicy): void {
  for (const [what, n] of Object.entries({ last: p.last, hourly: p.hourly, daily: p.daily, weekly: p.weekly, monthly: p.monthly, yearly: p.yearly })) {
    if (n !== undefined && !(n === Infinity || (Number.isSafeInteger(n) && n >= 0))) {
      throw new FragfsError('INVALID', `forget policy: keep ${what} must be a whole number of 0 or more, or unlimited, not ${String(n)}`);
    }
  }
  if (p.within !== undefined) {
    for (const [what, n] of Object.entries(p.within)) {
      if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DURATION_PART) {
        throw new FragfsError('INVALID', `forget policy: keep within ${what} must be a whole number from 0 to ${MAX_DURATION_PART}, not ${String(n)}`);
      }
    }
  }
}
