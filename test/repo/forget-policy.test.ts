// The retention arithmetic of `fragfs forget` against a table of 38 snapshot times over two years
// (several per day and per hour, ISO weeks across year ends, a leap day). The expected sets were
// worked out by hand and, except where restic 0.17's "keep the oldest too" rule applies (marked),
// match what restic 0.14's `forget --dry-run` keeps for the same times under TZ=UTC.

import test from 'ava';
import { FragfsError } from '../../src/errors.js';
import {
  REASON_GIVEN,
  REASON_NAMED,
  REASON_NOT_GIVEN,
  REASON_NO_POLICY,
  applyForgetPolicy,
  formatKeepDuration,
  isEmptyPolicy,
  parseKeepCount,
  parseKeepDuration,
  planForget,
  type ForgetPolicy,
  type PolicySnapshot,
} from '../../src/repo/forget-policy.js';

// Buckets are UTC whatever the zone: run in one 3.5 hours off UTC (and off by whole days at times
// near midnight) so that a local-time slip would change the answers.
process.env['TZ'] = 'America/St_Johns';

/** Oldest first; snapshot i (1-based) has key `s<i>`. */
const TIMES = [
  '2024-01-01 00:00', // 1  Mon, ISO 2024-W01
  '2024-01-01 23:59', // 2
  '2024-02-29 12:00', // 3  leap day
  '2024-03-31 10:00', // 4  Sun
  '2024-04-01 09:00', // 5  Mon
  '2024-06-15 08:00', // 6
  '2024-06-15 08:30', // 7
  '2024-06-15 20:00', // 8
  '2024-12-29 18:00', // 9  Sun, 2024-W52
  '2024-12-30 07:00', // 10 Mon, 2025-W01
  '2024-12-31 23:00', // 11 Tue, 2025-W01, still 2024
  '2025-01-01 01:00', // 12 Wed, 2025-W01
  '2025-03-01 10:00', // 13
  '2025-03-31 10:00', // 14
  '2025-05-10 09:00', // 15
  '2025-05-10 09:45', // 16
  '2025-05-10 10:15', // 17
  '2025-08-01 12:00', // 18
  '2025-11-30 22:00', // 19 Sun, W48
  '2025-12-01 06:00', // 20 Mon, W49
  '2025-12-20 10:00', // 21 Sat, W51
  '2025-12-27 10:00', // 22 Sat, W52
  '2025-12-28 23:30', // 23 Sun, W52
  '2025-12-29 00:30', // 24 Mon, 2026-W01
  '2025-12-31 23:00', // 25 Wed, 2026-W01
  '2026-01-01 00:00', // 26 Thu
  '2026-01-01 09:00', // 27
  '2026-01-02 09:00', // 28 Fri
  '2026-01-02 09:20', // 29
  '2026-01-02 09:40', // 30
  '2026-01-02 10:05', // 31
  '2026-01-03 09:00', // 32 Sat
  '2026-01-04 09:00', // 33 Sun, last of 2026-W01
  '2026-01-05 09:00', // 34 Mon, 2026-W02
  '2026-01-05 21:00', // 35
  '2026-01-06 08:00', // 36 Tue
  '2026-01-06 08:10', // 37
  '2026-01-06 09:00', // 38 the newest
];
const NAMES: Record<number, string> = { 1: 'first', 6: 'june', 13: 'march', 30: 'friday' };

function utcMs(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}:00Z`);
}

const SNAPSHOTS: PolicySnapshot[] = TIMES.map((t, i) => ({
  key: `s${i + 1}`,
  ...(NAMES[i + 1] === undefined ? {} : { name: NAMES[i + 1]! }),
  createdMs: utcMs(t),
}));
const NOW_MS = utcMs('2026-01-07 00:00');
const ALL = TIMES.map((_t, i) => i + 1);

function indices(list: readonly PolicySnapshot[]): number[] {
  return list.map((s) => Number(s.key.slice(1))).sort((a, b) => a - b);
}

/** The 1-based indices a policy keeps, and a check that kept + removed is the whole table. */
function kept(policy: ForgetPolicy, list: readonly PolicySnapshot[] = SNAPSHOTS, nowMs = NOW_MS): number[] {
  const plan = applyForgetPolicy(list, policy, nowMs);
  const all = [...indices(plan.keep), ...indices(plan.remove)].sort((a, b) => a - b);
  if (JSON.stringify(all) !== JSON.stringify(indices(list))) throw new Error('keep and remove do not partition the list');
  return indices(plan.keep);
}

function reasonsOf(policy: ForgetPolicy): Map<number, string[]> {
  const plan = applyForgetPolicy(SNAPSHOTS, policy, NOW_MS);
  return new Map(plan.decisions.map((d) => [Number(d.snapshot.key.slice(1)), d.reasons]));
}

const CASES: [string, ForgetPolicy, number[]][] = [
  ['--keep-last 5', { last: 5 }, [34, 35, 36, 37, 38]],
  ['--keep-last 40 (more than there are)', { last: 40 }, ALL],
  ['--keep-hourly 5', { hourly: 5 }, [33, 34, 35, 37, 38]],
  ['--keep-hourly 10', { hourly: 10 }, [26, 27, 30, 31, 32, 33, 34, 35, 37, 38]],
  ['--keep-daily 4', { daily: 4 }, [32, 33, 35, 38]],
  ['--keep-daily 7', { daily: 7 }, [25, 27, 31, 32, 33, 35, 38]],
  ['--keep-weekly 3 (ISO weeks: Sunday 2026-01-04 ends W01)', { weekly: 3 }, [23, 33, 38]],
  ['--keep-weekly 5', { weekly: 5 }, [20, 21, 23, 33, 38]],
  // 10 and 11 (30 and 31 December 2024) are in 2025-W01 with 12, so only 12 stands for that week.
  ['--keep-weekly 12 (ISO years)', { weekly: 12 }, [9, 12, 13, 14, 17, 18, 19, 20, 21, 23, 33, 38]],
  ['--keep-monthly 3', { monthly: 3 }, [19, 25, 38]],
  ['--keep-yearly 3', { yearly: 3 }, [11, 25, 38]],
  // restic 0.17: a count not used up also keeps the oldest snapshot (restic 0.14: 11, 25, 38).
  ['--keep-yearly 5 (the oldest too)', { yearly: 5 }, [1, 11, 25, 38]],
  // restic 0.17's "unlimited" (0.14's -1 keeps the same less the oldest).
  ['--keep-monthly unlimited', { monthly: Infinity }, [1, 2, 3, 4, 5, 8, 11, 12, 14, 17, 18, 19, 25, 38]],
  // Strictly newer than 2026-01-04 09:00: snapshot 33, exactly two days older than 38, goes.
  ['--keep-within 2d', { within: { years: 0, months: 0, days: 2, hours: 0 } }, [34, 35, 36, 37, 38]],
  ['--keep-within 1m', { within: { years: 0, months: 1, days: 0, hours: 0 } }, ALL.slice(20)],
  // 2026-01-06 09:00 back 1y2m3d is 2024-11-03 09:00, back 4h more 05:00.
  ['--keep-within 1y2m3d4h', { within: { years: 1, months: 2, days: 3, hours: 4 } }, ALL.slice(8)],
  ['--keep-daily 3 --keep-weekly 2 --keep-monthly 2 --keep-yearly 2', { daily: 3, weekly: 2, monthly: 2, yearly: 2 }, [25, 33, 35, 38]],
  ['--keep-last 3 --keep-within 1d', { last: 3, within: { years: 0, months: 0, days: 1, hours: 0 } }, [35, 36, 37, 38]],
  ['--keep-name alone keeps the named and nothing else', { keepNamed: true }, [1, 6, 13, 30]],
  ['--keep-daily 2 --keep-name', { daily: 2, keepNamed: true }, [1, 6, 13, 30, 35, 38]],
  ['--keep-last 0 --keep-daily 1: a zero count is off', { last: 0, daily: 1 }, [38]],
];

for (const [title, policy, expected] of CASES) {
  test(`policy ${title}`, (t) => {
    t.deepEqual(kept(policy), expected);
  });
}

test('the table is what the comments say (ISO weeks and week days in UTC)', (t) => {
  t.is(SNAPSHOTS.length, 38);
  t.is(new Date(utcMs(TIMES[32]!)).getUTCDay(), 0, 'snapshot 33 is a Sunday');
  t.is(new Date(utcMs(TIMES[9]!)).getUTCDay(), 1, 'snapshot 10 is a Monday');
});

test('reasons: every rule that keeps a snapshot is named, in restic order', (t) => {
  const r = reasonsOf({ daily: 3, weekly: 2, monthly: 2, yearly: 2, last: 1, keepNamed: true, within: { years: 0, months: 0, days: 0, hours: 12 } });
  t.deepEqual(r.get(38), ['within 12h', 'last snapshot', 'daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot']);
  t.deepEqual(r.get(37), ['within 12h']);
  t.deepEqual(r.get(35), ['daily snapshot']);
  t.deepEqual(r.get(33), ['daily snapshot', 'weekly snapshot']);
  t.deepEqual(r.get(30), [REASON_NAMED]);
  t.deepEqual(r.get(25), ['monthly snapshot', 'yearly snapshot']);
  t.deepEqual(r.get(24), [REASON_NO_POLICY]);
});

test('decisions come newest first; a named snapshot uses up a count like any other (as restic tags do)', (t) => {
  const list = SNAPSHOTS.map((s) => (s.key === 's38' ? { ...s, name: 'latest' } : s));
  const plan = applyForgetPolicy(list, { last: 2, keepNamed: true }, NOW_MS);
  t.deepEqual(plan.decisions.slice(0, 3).map((d) => d.snapshot.key), ['s38', 's37', 's36']);
  t.deepEqual(plan.decisions[0]!.reasons, [REASON_NAMED, 'last snapshot']);
  t.deepEqual(indices(plan.keep), [1, 6, 13, 30, 37, 38]);
});

test('--keep-within counts months on the calendar as Go does: 31 March back one month is 3 March', (t) => {
  const list = ['2025-02-28 10:00', '2025-03-02 10:00', '2025-03-03 10:00', '2025-03-03 10:01', '2025-03-31 10:00'].map((time, i) => ({
    key: `s${i + 1}`,
    createdMs: utcMs(time),
  }));
  t.deepEqual(kept({ within: { years: 0, months: 1, days: 0, hours: 0 } }, list), [4, 5]);
  // A leap day back one year is 1 March.
  const leap = ['2023-02-28 12:00', '2023-03-01 12:00', '2023-03-01 12:01', '2024-02-29 12:00'].map((time, i) => ({
    key: `s${i + 1}`,
    createdMs: utcMs(time),
  }));
  t.deepEqual(kept({ within: { years: 1, months: 0, days: 0, hours: 0 } }, leap), [3, 4]);
});

test('a snapshot dated in the future is not "the newest" for --keep-within, and is kept by it', (t) => {
  const future = [...SNAPSHOTS, { key: 's39', createdMs: utcMs('2026-03-01 00:00') }];
  t.deepEqual(kept({ within: { years: 0, months: 0, days: 2, hours: 0 } }, future), [34, 35, 36, 37, 38, 39]);
  // Nothing before now: restic's newest is its zero time, so every snapshot is within.
  t.deepEqual(kept({ within: { years: 0, months: 0, days: 1, hours: 0 } }, SNAPSHOTS.slice(0, 3), utcMs('2020-01-01 00:00')), [1, 2, 3]);
});

test('a very long duration keeps everything', (t) => {
  t.deepEqual(kept({ within: { years: 100_000, months: 0, days: 0, hours: 0 } }), ALL);
});

test('equal times are ordered by key, whatever the input order', (t) => {
  const same = utcMs('2025-06-01 12:00');
  const a = [{ key: 'b', createdMs: same }, { key: 'a', createdMs: same }, { key: 'c', createdMs: same - 1 }];
  for (const list of [a, [...a].reverse()]) {
    const plan = applyForgetPolicy(list, { last: 1 }, NOW_MS);
    t.deepEqual(plan.keep.map((s) => s.key), ['a']);
  }
});

test('an empty policy keeps everything; an empty list keeps nothing', (t) => {
  t.deepEqual(kept({}), ALL);
  t.true(isEmptyPolicy({}));
  t.true(isEmptyPolicy({ last: 0, within: { years: 0, months: 0, days: 0, hours: 0 }, keepNamed: false }));
  t.false(isEmptyPolicy({ keepNamed: true }));
  t.false(isEmptyPolicy({ yearly: Infinity }));
  const plan = applyForgetPolicy([], { last: 3 }, NOW_MS);
  t.deepEqual([plan.keep, plan.remove, plan.decisions], [[], [], []]);
});

test('planForget: snapshots given by hand go; the policy decides among the others', (t) => {
  const plan = planForget(SNAPSHOTS, { given: new Set(['s38', 's1']), policy: { last: 2, keepNamed: true }, nowMs: NOW_MS });
  // s38 is given, so the two newest of the rest are s37 and s36; s1 is named but given by hand.
  t.deepEqual(indices(plan.keep), [6, 13, 30, 36, 37]);
  t.is(plan.remove.length, 33);
  const reasons = new Map(plan.decisions.map((d) => [d.snapshot.key, d.reasons]));
  t.deepEqual(reasons.get('s38'), [REASON_GIVEN]);
  t.deepEqual(reasons.get('s1'), [REASON_GIVEN]);
  t.deepEqual(reasons.get('s2'), [REASON_NO_POLICY]);
  t.deepEqual(plan.decisions.map((d) => d.snapshot.key), [...SNAPSHOTS].reverse().map((s) => s.key), 'newest first');
});

test('planForget without a policy removes only what is given', (t) => {
  const plan = planForget(SNAPSHOTS, { given: new Set(['s5', 's6']), nowMs: NOW_MS });
  t.deepEqual(indices(plan.remove), [5, 6]);
  t.is(plan.keep.length, 36);
  t.deepEqual(plan.decisions.find((d) => d.snapshot.key === 's7')!.reasons, [REASON_NOT_GIVEN]);
});

test('inputs are checked: duplicates, bad times, bad counts', (t) => {
  const dup = [SNAPSHOTS[0]!, SNAPSHOTS[0]!];
  t.is(t.throws(() => applyForgetPolicy(dup, { last: 1 }, NOW_MS), { instanceOf: FragfsError })!.code, 'INVALID');
  t.throws(() => applyForgetPolicy([{ key: 'x', createdMs: NaN }], { last: 1 }, NOW_MS), { message: /no valid time/ });
  t.throws(() => applyForgetPolicy(SNAPSHOTS, { last: -1 }, NOW_MS), { message: /whole number/ });
  t.throws(() => applyForgetPolicy(SNAPSHOTS, { daily: 1.5 }, NOW_MS), { message: /whole number/ });
  t.throws(() => applyForgetPolicy(SNAPSHOTS, { within: { years: -1, months: 0, days: 0, hours: 0 } }, NOW_MS), { message: /keep within years/ });
});

test('parseKeepCount: whole numbers and "unlimited"; anything else is a usage error naming the option', (t) => {
  t.is(parseKeepCount('7', '--keep-daily'), 7);
  t.is(parseKeepCount('0', '--keep-daily'), 0);
  t.is(parseKeepCount('unlimited', '--keep-daily'), Infinity);
  for (const bad of ['-1', '1.5', '', 'seven', '1e3', '99999999999999999999']) {
    const e = t.throws(() => parseKeepCount(bad, '--keep-daily'), { instanceOf: FragfsError })!;
    t.is(e.code, 'USAGE');
    t.regex(e.message, /^--keep-daily /);
  }
});

test('parseKeepDuration: restic units y m d h, in any order, each once', (t) => {
  t.deepEqual(parseKeepDuration('2d', '--keep-within'), { years: 0, months: 0, days: 2, hours: 0 });
  t.deepEqual(parseKeepDuration('1y2m3d4h', '--keep-within'), { years: 1, months: 2, days: 3, hours: 4 });
  t.deepEqual(parseKeepDuration('4h1y', '--keep-within'), { years: 1, months: 0, days: 0, hours: 4 });
  t.is(formatKeepDuration(parseKeepDuration('0y2m0d12h', '--keep-within')), '2m12h');
  for (const bad of ['', '2', 'd', '2w', '1d2d', '-1d', '1.5d', '2 d', '100001y']) {
    const e = t.throws(() => parseKeepDuration(bad, '--keep-within'), { instanceOf: FragfsError })!;
    t.is(e.code, 'USAGE');
    t.regex(e.message, /^--keep-within /);
  }
});
