// Shares and groups from the command line, as two people would use them: identities made by
// age-keygen, a group, a folder shared to it, read by a member with ls, cat and get; refusals are one
// line with exit 4; the share key sealed to a member is a file Debian's `age -d` reads.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatShareLink, parseShareLink } from '../../src/people/share-link.js';
import { lastLine, oneLineError, runCli } from '../helpers/cli.js';
import { testIf } from '../helpers/capabilities.js';
import { createStore, tempDir } from '../helpers/stores.js';

const hasAge = existsSync('/usr/bin/age') && existsSync('/usr/bin/age-keygen');
const ageTest = testIf(hasAge, 'the age interop test needs Debian\'s age package (scripts/setup.sh installs it)');

/** An identity file written by age-keygen and its recipient. */
function ageKeygen(file: string): string {
  execFileSync('age-keygen', ['-o', file], { stdio: ['ignore', 'ignore', 'ignore'] });
  return execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
}

const NO_PASS = { FRAGFS_PASSPHRASE: undefined };

ageTest('two people and a group: a member opens the shared folder with an age-keygen identity, an outsider and nobody get one line and exit 4', async (t) => {
  const work = await tempDir('fragfs-share-cli-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const src = join(work.path, 'team');
  await mkdir(join(src, 'plans', 'q3'), { recursive: true });
  await mkdir(join(src, 'private'), { recursive: true });
  await writeFile(join(src, 'plans', 'q3', 'roadmap.md'), 'ship it\n');
  await writeFile(join(src, 'private', 'salaries.txt'), 'not for the team\n');
  const put = await runCli(['put', store, src]);
  t.is(put.code, 0, put.stderr);
  const key = lastLine(put.stdout);

  const alice = join(work.path, 'alice.key');
  const bob = join(work.path, 'bob.key');
  const A = ageKeygen(alice);
  ageKeygen(bob);
  const g = await runCli(['group', 'create', store, 'team', A]);
  t.is(g.code, 0, g.stderr);
  const s = await runCli(['share', store, `${key}/plans`, '--to', '@team']);
  t.is(s.code, 0, s.stderr);
  const link = lastLine(s.stdout);
  t.regex(link, /^fragfs:share:[A-Za-z0-9_-]+:default:[0-9a-f]{32}:-$/);
  t.regex(s.stderr, /shared \/plans of [0-9a-f]{12} \(1 files, 1 folders\) to @team in \d+ ms/);

  const ls = await runCli(['ls', link], { env: { ...NO_PASS, FRAGFS_IDENTITY: alice } });
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, / q3\n$/);
  const cat = await runCli(['cat', `${link}/q3/roadmap.md`], { env: { ...NO_PASS, FRAGFS_IDENTITY: alice } });
  t.is(cat.stdout, 'ship it\n', cat.stderr);
  const dest = join(work.path, 'got');
  const get = await runCli(['get', link, dest], { env: { ...NO_PASS, FRAGFS_IDENTITY: alice } });
  t.is(get.code, 0, get.stderr);
  t.is(await readFile(join(dest, 'q3', 'roadmap.md'), 'utf8'), 'ship it\n');
  t.false(existsSync(join(dest, 'private')));

  oneLineError(t, await runCli(['ls', link], { env: { ...NO_PASS, FRAGFS_IDENTITY: bob } }), 4, /none of the identities given can open it/);
  oneLineError(t, await runCli(['ls', link], { env: NO_PASS }), 4, /sealed to people: give your identity/);
  oneLineError(t, await runCli(['ls', `${link}/../private`], { env: { ...NO_PASS, FRAGFS_IDENTITY: alice } }), 2, /'\.\.' is not allowed/);

  // age interop: the share key sealed to the group is an age file; alice's group identity comes
  // from the group's box, which is an age file sealed to her.
  const config = JSON.parse(await readFile(join(store, 'fragfs.json'), 'utf8')) as {
    spaces: { default: { groups: Record<string, { boxes: string[] }>; shares: Record<string, { grants: string }> } };
  };
  const box = Object.values(config.spaces.default.groups)[0]!.boxes[0]!;
  await writeFile(join(work.path, 'box.age'), box);
  const opened = JSON.parse(execFileSync('age', ['-d', '-i', alice, join(work.path, 'box.age')], { encoding: 'utf8' })) as { identities: string[] };
  await writeFile(join(work.path, 'team.key'), `${opened.identities[0]}\n`);
  await writeFile(join(work.path, 'grants.age'), config.spaces.default.shares[parseShareLink(link).id]!.grants);
  const shareKey = execFileSync('age', ['-d', '-i', join(work.path, 'team.key'), join(work.path, 'grants.age')]);
  t.is(shareKey.length, 32);
  const asLink = formatShareLink({ ...parseShareLink(link), key: new Uint8Array(shareKey) });
  const byKey = await runCli(['cat', `${asLink}/q3/roadmap.md`], { env: NO_PASS });
  t.is(byKey.stdout, 'ship it\n', byKey.stderr);

  // shares lists it; unshare takes it back.
  const list = await runCli(['shares', store]);
  t.regex(list.stdout, new RegExp(`^${parseShareLink(link).id}  .* ${key.slice(0, 12)}/plans  @team\\n$`));
  t.is((await runCli(['unshare', store, parseShareLink(link).id])).code, 0);
  oneLineError(t, await runCli(['ls', link], { env: { ...NO_PASS, FRAGFS_IDENTITY: alice } }), 5, /is not in the store/);
});

test('a link share opens with the link alone (no passphrase, no identity); share ./folder puts it first', async (t) => {
  const work = await tempDir('fragfs-share-cli-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const src = join(work.path, 'photos');
  await mkdir(join(src, '2026'), { recursive: true });
  await writeFile(join(src, '2026', 'beach.jpg'), 'JPEG');
  const s = await runCli(['share', store, `${src}`], { env: {} });
  t.is(s.code, 0, s.stderr);
  const link = lastLine(s.stdout);
  t.regex(link, /:[A-Za-z0-9_-]{43}$/);
  const cat = await runCli(['cat', `${link}/2026/beach.jpg`], { env: NO_PASS });
  t.is(cat.stdout, 'JPEG', cat.stderr);
  oneLineError(t, await runCli(['ls', link.replace(/:[A-Za-z0-9_-]{43}$/, `:${'A'.repeat(43)}`)], { env: NO_PASS }), 4, /the key does not open it/);
  oneLineError(t, await runCli(['ls', 'fragfs:share:nonsense'], { env: NO_PASS }), 5, /not a fragfs share link/);
  oneLineError(t, await runCli(['ls', link, 'extra'], { env: NO_PASS }), 2, /a share link stands for STORE and KEY/);
});
