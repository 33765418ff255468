// Summary statistics of one figure over runs: median and spread (min-max and the interquartile range).

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

function quantile(sorted: number[], p: number): number {
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(xs: number[]): Summary | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return { n: v.length, median: quantile(v, 0.5), min: v[0]!, max: v[v.length - 1]!, q1: quantile(v, 0.25), q3: quantile(v, 0.75) };
}

/** subject/peer of the medians; undefined when either is missing or the peer's is 0. */
export function ratio(subject: Summary | undefined, peer: Summary | undefined): number | undefined {
  if (!subject || !peer || peer.median === 0) return undefined;
  return subject.median / peer.median;
}
