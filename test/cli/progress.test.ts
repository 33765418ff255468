// The ETA of progress bars: nothing until there is enough work to tell, then the average rate since
// work began, so a slow start (the KDF, a survey, a first slow block) does not make it leap from
// hours to minutes; and its text rounded so that it does not flicker.

import test from 'ava';
import { EtaEstimator, formatEta } from '../../cli/progress.js';

test('no ETA before work begins, before the total is known, or with too little done', (t) => {
  let now = 1_000_000;
  const eta = new EtaEstimator(() => now);
  t.is(eta.remainingMs(0, 1000), undefined);
  now += 60_000; // a long pause before the first byte (a KDF, a survey) does not count
  t.is(eta.remainingMs(10, undefined), undefined);
  now += 1000;
  t.is(eta.remainingMs(20, 1000), undefined, 'one second of work: too little to tell');
  now += 3000;
  t.is(eta.remainingMs(5, 1000), undefined, 'under 1% done');
});

test('the ETA follows the average rate since work began and settles instead of jumping', (t) => {
  let now = 0;
  const eta = new EtaEstimator(() => now);
  const total = 1000;
  // A slow start (10 units in the first 4 s), then 100 units a second.
  eta.remainingMs(1, total);
  now = 4000;
  const early = eta.remainingMs(10, total)!;
  t.true(early > 300_000, `a slow start gives a long estimate: ${early}`);
  const seen: number[] = [];
  let done = 10;
  for (let s = 1; s <= 9; s++) {
    now += 1000;
    done += 100;
    seen.push(eta.remainingMs(done, total)!);
  }
  // Each estimate is shorter than the one before, and the last is close to the truth (0.1 s left).
  for (let i = 1; i < seen.length; i++) t.true(seen[i]! < seen[i - 1]!, `estimates: ${seen.join(', ')}`);
  t.true(seen[seen.length - 1]! < 2000, `${seen[seen.length - 1]}`);
  t.is(eta.remainingMs(total, total), 0);
  t.true(Math.abs(eta.rate(done) - done / 13) < 1e-9);
});

test('ETA text: seconds, rounded up to 5 s past 10 s and 10 s past two minutes; minutes; hours', (t) => {
  t.is(formatEta(undefined), '--');
  t.is(formatEta(0), '0s');
  t.is(formatEta(7200), '8s');
  t.is(formatEta(41_000), '45s');
  t.is(formatEta(125_000), '2m10s');
  t.is(formatEta(3_599_000), '1h00m');
  t.is(formatEta(5_700_000), '1h35m');
});
