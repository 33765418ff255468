// Who holds a snapshot name: `put --name` and `snapshot --name` refuse a name another snapshot of
// the space already has, unless told to take it over (`--replace`), and then take it from the older
// snapshots only once the new one is stored, so the name never names nothing.

import { FragfsError } from '../errors.js';
import type { Repo } from './repo.js';

/**
 * Throws EXISTS when a snapshot of the space is already named `name` and `replace` is not set.
 * Callers MUST call it before they store anything, so a refused name leaves the store as it was.
 * Two writers racing for one name may both pass: names are labels (the newest wins on lookup), so
 * that race costs a duplicate, never a lost snapshot.
 */
export async function checkNameFree(repo: Repo, name: string, replace: boolean): Promise<void> {
  if (replace) return;
  const holders = (await repo.listRefs({ onError: () => undefined })).filter((r) => r.name === name);
  if (holders.length === 0) return;
  const newest = holders[holders.length - 1]!;
  throw new FragfsError(
    'EXISTS',
    `snapshot ${newest.snapshot.slice(0, 12)} of ${new Date(newest.createdMs).toISOString()} is already named ${JSON.stringify(name)}: choose another name, or --replace to move the name to the new snapshot`,
  );
}

/**
 * Takes `name` from every snapshot but `keep`: their refs are written again without the name (the
 * snapshots and their tags stay; `forget` removes them). Returns the keys that lost the name.
 */
export async function moveName(repo: Repo, name: string, keep: string): Promise<string[]> {
  const moved: string[] = [];
  for (const ref of await repo.listRefs({ onError: () => undefined })) {
    if (ref.name !== name || ref.snapshot === keep) continue;
    const { name: _dropped, ...unnamed } = ref;
    // A put of an id the store holds may be skipped (content-addressed stores dedup), so the old
    // ref goes first and the new one follows at once: a crash between the two leaves that older
    // snapshot unlisted, as a `forget` of it would (the caller asked for its name to go).
    await repo.store.delete(repo.refNs, ref.snapshot);
    await repo.putRef(unnamed);
    moved.push(ref.snapshot);
  }
  if (moved.length > 0) await repo.sync();
  return moved;
}

/**
 * Runs `take` (which stores a snapshot named `name` and returns its key, or undefined when it took
 * none) under the name rule: with `claim`, a name another snapshot has is refused first (EXISTS)
 * unless `replace`, which moves it once the new snapshot is stored. `onMoved` hears each key that
 * lost the name. Without `claim` (fragfs's own names, such as a remote head) names may repeat.
 */
export async function claimingName<T extends { key: string } | undefined>(
  repo: Repo,
  name: string | undefined,
  o: { claim?: boolean; replace?: boolean; onMoved?: (key: string) => void },
  take: () => Promise<T>,
): Promise<T> {
  if (name === undefined || !o.claim) return take();
  await checkNameFree(repo, name, o.replace === true);
  const made = await take();
  if (made !== undefined && o.replace) for (const key of await moveName(repo, name, made.key)) o.onMoved?.(key);
  return made;
}
