// The CLI on a real terminal and in pipes: init asks for the passphrase twice and echoes neither (a
// pty from python3's pty module), every command says there is no store before asking for a
// passphrase, and a reader that closes stdout early (`| head -1`) ends fragfs quietly with exit 0.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, FAST_KDF, lastLine, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { testIf } from '../helpers/capabilities.js';

const hasPython = spawnSync('python3', ['-c', 'import pty']).status === 0;

/**
 * Runs `argv` on a pty; each time the output ends with one of `answers`' prompts, types its answer
 * (after a pause, so the program is waiting when the keys arrive). Output and exit code.
 */
const DRIVER = `
import os, pty, sys, time, select, json
argv, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b''
pending = list(answers)
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    if pending and out.rstrip(b' ').endswith(pending[0][0].encode().rstrip(b' ')):
        time.sleep(0.3)
        os.write(fd, pending.pop(0)[1].encode() + b'\\r')
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'out': out.decode('utf8', 'replace'), 'code': os.waitstatus_to_exitcode(status)}))
`;

function onPty(args: string[], answers: [string, string][], env: Record<string, string | undefined> = {}): { out: string; code: number } {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env['FRAGFS_PASSPHRASE'] === undefined) delete e['FRAGFS_PASSPHRASE'];
  for (const k of Object.keys(env)) if (env[k] === undefined) delete e[k];
  const r = spawnSync('python3', ['-c', DRIVER, JSON.stringify([process.execPath, CLI_PATH, ...args]), JSON.stringify(answers)], {
    env: e,
    encoding: 'utf8',
    timeout: 90_000,
  });
  if (r.status !== 0) throw new Error(`pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { out: string; code: number };
}

testIf(hasPython, 'python3 with its pty module')('init on a terminal echoes neither the passphrase nor its confirmation', async (t) => {
  const work = await tempDir('fragfs-pty-init-');
  t.teardown(work.remove);
  const secret = 'Hidden-Passphrase-42';
  const r = onPty(['init', join(work.path, 'store'), '--backend', 'dir'], [
    ['Passphrase: ', secret],
    ['Passphrase again: ', secret],
  ]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /Passphrase again:/);
  t.regex(r.out, /created fragfs store/);
  t.false(r.out.includes(secret), `the passphrase was echoed: ${JSON.stringify(r.out)}`);
  const mismatch = onPty(['init', join(work.path, 'store2'), '--backend', 'dir'], [
    ['Passphrase: ', secret],
    ['Passphrase again: ', 'something else'],
  ]);
  t.is(mismatch.code, 2, mismatch.out);
  t.regex(mismatch.out, /the two passphrases differ/);
  t.false(mismatch.out.includes('something else'));
});

testIf(hasPython, 'python3 with its pty module')('every command that opens a store says there is none before asking for a passphrase', async (t) => {
  const work = await tempDir('fragfs-pty-nostore-');
  t.teardown(work.remove);
  const none = join(work.path, 'nostore');
  const mnt = join(work.path, 'mnt');
  await mkdir(mnt);
  const commands = [
    ['snapshots', none],
    ['ls', none, 'k'],
    ['cat', none, 'k/a'],
    ['get', none, 'k', join(work.path, 'out')],
    ['put', none, work.path],
    ['snapshot', none],
    ['forget', none, 'k'],
    ['stats', none],
    ['verify', none],
    ['gc', none],
    ['sync', none, join(work.path, 'other')],
    ['mount', none, mnt],
    ['mount', none, mnt, '--background'],
  ];
  for (const args of commands) {
    // Typing a passphrase if asked keeps a failing run short; the prompt itself is the failure.
    const r = onPty(args, [['Passphrase: ', 'x']]);
    t.is(r.code, 3, `${args.join(' ')}: ${r.out}`);
    t.notRegex(r.out, /Passphrase/, `${args[0]} asked first: ${r.out}`);
    t.regex(r.out, /no fragfs store at/, args.join(' '));
  }
});

/** Runs `fragfs args | head -c N`, the way a shell does: fragfs's stdout is a pipe closed early. */
function intoHead(args: string[], bytes: number): Promise<{ code: number; stderr: string; head: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, FRAGFS_PASSPHRASE: 'pipe passphrase' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let head = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.once('data', (d: Buffer) => {
      head = d.subarray(0, bytes).toString('latin1');
      child.stdout.destroy(); // the reader goes away, as head does after its first line
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr, head }));
  });
}

test('a reader that closes stdout early ends ls, cat and get - quietly with exit 0', async (t) => {
  const work = await tempDir('fragfs-epipe-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  const env = { FRAGFS_PASSPHRASE: 'pipe passphrase' };
  t.is((await runCli(['init', store, '--backend', 'dir', ...FAST_KDF], { env })).code, 0);
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  for (let i = 0; i < 1500; i++) await writeFile(join(tree, `file-with-a-longish-name-${i}`), String(i));
  await writeFile(join(tree, 'big'), Buffer.alloc(8 * 1024 * 1024, 0x61));
  const put = await runCli(['put', store, tree, '--no-progress'], { env });
  t.is(put.code, 0, put.stderr);
  const key = lastLine(put.stdout);
  for (const args of [
    ['ls', store, key],
    ['cat', store, `${key}/big`],
    ['get', store, `${key}/big`, '-'],
  ]) {
    const r = await intoHead(args, 10);
    t.is(r.code, 0, `${args[0]}: ${r.stderr}`);
    t.is(r.stderr, '', args[0]);
    t.true(r.head.length > 0);
  }
});

test('put - stores stdin as one file (--stdin-name), get KEY/file - writes it to stdout, --exclude and --exclude-file leave paths out', async (t) => {
  const work = await tempDir('fragfs-cli-stdin-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const data = Buffer.alloc(3 * 1024 * 1024 + 5);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 256;
  const input = join(work.path, 'input');
  await writeFile(input, data);
  const put = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI_PATH}" put "${store}" - --stdin-name dump.bin -q < "${input}"`], {
    env: { ...process.env, FRAGFS_PASSPHRASE: 'test passphrase: correct horse battery staple' },
    encoding: 'utf8',
  });
  t.is(put.status, 0, put.stderr);
  const key = lastLine(put.stdout);
  t.regex(key, /^[0-9a-f]{64}$/);
  t.is(put.stdout.trim(), key, '--quiet prints the key alone');
  const ls = await runCli(['ls', store, key]);
  t.regex(ls.stdout, /dump\.bin/);
  const get = spawnSync(process.execPath, [CLI_PATH, 'get', store, key, '-'], {
    env: { ...process.env, FRAGFS_PASSPHRASE: 'test passphrase: correct horse battery staple' },
    maxBuffer: 64 * 1024 * 1024,
  });
  t.is(get.status, 0, get.stderr.toString());
  t.true(Buffer.compare(get.stdout, data) === 0, 'get - gives the bytes back');
  // `put -` with another path is a usage error.
  const both = await runCli(['put', store, '-', work.path]);
  t.is(both.code, 2);

  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'node_modules', 'x'), { recursive: true });
  await writeFile(join(tree, 'node_modules', 'x', 'index.js'), 'x');
  await writeFile(join(tree, 'a.tmp'), 't');
  await writeFile(join(tree, 'keep'), 'k');
  const list = join(work.path, 'excludes');
  await writeFile(list, '# build output\nnode_modules\n\n');
  const ex = await runCli(['put', store, tree, '--exclude', '*.tmp', '--exclude-file', list, '--no-progress', '--verbose']);
  t.is(ex.code, 0, ex.stderr);
  t.regex(ex.stderr, /^fragfs: excluded .*\/tree\/a\.tmp$/m);
  t.regex(ex.stderr, /^fragfs: excluded .*\/tree\/node_modules$/m);
  const names = (await runCli(['ls', store, lastLine(ex.stdout)])).stdout;
  t.regex(names, / keep\n/);
  t.notRegex(names, /node_modules|a\.tmp/);
  // A folder cannot go to stdout.
  const dir = await runCli(['get', store, lastLine(ex.stdout), '-']);
  t.is(dir.code, 2);
  t.regex(dir.stderr, /only a file can be written to stdout/);
  // An exclude file that is not there is one clear error, before anything is stored.
  const bad = await runCli(['put', store, tree, '--exclude-file', join(work.path, 'missing-list')]);
  t.is(bad.code, 5, bad.stderr);
  t.regex(bad.stderr, /^fragfs: reading the exclude file .*missing-list/);
});

testIf(hasPython, 'python3 with its pty module')('put, get, verify, sync and gc draw progress on a terminal and none into a pipe', async (t) => {
  const work = await tempDir('fragfs-pty-progress-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'data'), Buffer.alloc(3 * 1024 * 1024, 0x62));
  const env = { FRAGFS_PASSPHRASE: 'test passphrase: correct horse battery staple' };
  const put = onPty(['put', store, tree], [], env);
  t.is(put.code, 0, put.out);
  t.regex(put.out, /put \[.*\] .*ETA/);
  const key = /([0-9a-f]{64})/.exec(put.out)![1]!;
  // Each command on a pty, then the same into a pipe (a new destination where it makes one).
  const runs: [string, string[], string[]][] = [
    ['get', ['get', store, key, join(work.path, 'out')], ['get', store, key, join(work.path, 'out2')]],
    ['verify', ['verify', store], ['verify', store]],
    ['sync', ['sync', store, join(work.path, 'copy'), key], ['sync', store, join(work.path, 'copy2'), key]],
    ['gc', ['gc', store, '--wait', '0'], ['gc', store, '--wait', '0']],
  ];
  for (const [label, args, pipedArgs] of runs) {
    const r = onPty(args, [], env);
    t.is(r.code, 0, `${label}: ${r.out}`);
    t.regex(r.out, new RegExp(`${label}(:| \\[)`), `${label} drew no progress: ${JSON.stringify(r.out)}`);
    const piped = await runCli(pipedArgs);
    t.is(piped.code, 0, piped.stderr);
    t.notRegex(piped.stderr, /\[[█░]|ETA|\r/, `${label} drew progress into a pipe`);
  }
  const quiet = await runCli(['put', store, tree, '-q']);
  t.is(quiet.stderr, '');
  t.regex(quiet.stdout, /^[0-9a-f]{64}\n$/);
});
