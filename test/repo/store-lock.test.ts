// The store lock: a live holder refuses, a dead one is recovered with one warning line, and a holder
// killed but not yet reaped by its parent (a zombie) or still exiting counts as dead, not as "in use".

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFragfsError } from '../../src/errors.js';
import { StoreLock, liveDir, lockPath, parseProcStat, processState } from '../../src/repo/store-lock.js';
import { tempDir } from '../helpers/stores.js';

const HOLDER = fileURLToPath(new URL('./lock-holder.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procState(pid: number): string | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state;
  } catch {
    return undefined;
  }
}

/**
 * Starts a lock holder. With `unreaped`, its parent is a shell that exec'd `sleep`, which never
 * waits for children: killed, the holder stays a zombie until the test ends the sleep.
 */
async function startHolder(t: ExecutionContext, storePath: string, o: { unreaped: boolean }): Promise<number> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const child: ChildProcess = o.unreaped
    ? spawn('sh', ['-c', `${quote(process.execPath)} ${quote(HOLDER)} ${quote(storePath)} & exec sleep 300`], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, [HOLDER, storePath], { stdio: ['ignore', 'pipe', 'inherit'] });
  let holderPid: number | undefined;
  t.teardown(() => {
    // Only processes this test started, by pid: the holder, then its parent (which lets the zombie go).
    if (holderPid !== undefined) {
      try {
        process.kill(holderPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child.kill('SIGKILL');
  });
  holderPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /locked (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`holder exited with ${code} before taking the lock: ${out}`)));
  });
  return holderPid;
}

test('parsing /proc/<pid>/stat: state, flags and start time, whatever the command name holds', (t) => {
  const line = (comm: string, state: string, flags: number) =>
    `4242 (${comm}) ${state} 1 4242 4242 0 -1 ${flags} 100 0 0 0 5 3 0 0 20 0 7 0 987654 1000000 500 18446744073709551615\n`;
  t.deepEqual(parseProcStat(line('node', 'S', 4194560)), { state: 'S', flags: 4194560, start: '987654' });
  t.deepEqual(parseProcStat(line('a) Z (b', 'R', 0)), { state: 'R', flags: 0, start: '987654' });
  t.is(parseProcStat('garbage'), undefined);
  t.is(processState(parseProcStat(line('node', 'Z', 4194316))!), 'dead', 'a zombie has exited');
  t.is(processState(parseProcStat(line('node', 'X', 0))!), 'dead');
  t.is(processState(parseProcStat(line('node', 'D', 0x400104))!), 'exiting', 'PF_EXITING set');
  t.is(processState(parseProcStat(line('node', 'S', 0x400100))!, true), 'exiting', 'SIGKILL pending');
  t.is(processState(parseProcStat(line('node', 'S', 0x400100))!), 'alive');
});

test('a live holder: LOCKED naming its pid, at once', async (t) => {
  const work = await tempDir('fragfs-lock-');
  t.teardown(work.remove);
  const pid = await startHolder(t, work.path, { unreaped: false });
  const e = await t.throwsAsync(StoreLock.acquire({ storePath: work.path, space: 'default', purpose: 'test', warn: () => t.fail('no warning') }));
  t.true(isFragfsError(e, 'LOCKED'), String(e));
  t.regex(e!.message, new RegExp(`in use read-write by pid ${pid} `));
});

test('a holder killed with SIGKILL and not yet reaped (a zombie) is dead: the lock is taken with one warning', async (t) => {
  const work = await tempDir('fragfs-lock-');
  t.teardown(work.remove);
  const pid = await startHolder(t, work.path, { unreaped: true });
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 200 && procState(pid) !== 'Z'; i++) await sleep(25);
  t.is(procState(pid), 'Z', 'the killed holder stays a zombie: its parent does not reap it');

  const warnings: string[] = [];
  const lock = await StoreLock.acquire({ storePath: work.path, space: 'default', purpose: 'test', warn: (l) => warnings.push(l) });
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, new RegExp(`^fragfs: recovered the lock of default left by pid ${pid} .*no longer running$`));
  t.is(lock.owner.pid, process.pid);
  await lock.release();
  await t.throwsAsync(stat(lockPath(work.path, 'default')), { code: 'ENOENT' });
});

test('a holder killed a moment ago (exiting or a zombie) does not make the next taker fail', async (t) => {
  const work = await tempDir('fragfs-lock-');
  t.teardown(work.remove);
  const pid = await startHolder(t, work.path, { unreaped: true });
  process.kill(pid, 'SIGKILL');
  // No wait for the kill to land: whatever state the holder is in now, it is gone or going.
  const warnings: string[] = [];
  const lock = await StoreLock.acquire({ storePath: work.path, space: 'default', purpose: 'test', warn: (l) => warnings.push(l) });
  t.is(warnings.length, 1, warnings.join('\n'));
  await lock.release();
});

test('the live state folder and the lock are private (0700, 0600)', async (t) => {
  const work = await tempDir('fragfs-lock-');
  t.teardown(work.remove);
  const lock = await StoreLock.acquire({ storePath: work.path, space: 'default', purpose: 'test' });
  t.teardown(() => lock.release());
  t.is((await stat(join(work.path, 'live'))).mode & 0o777, 0o700);
  t.is((await stat(liveDir(work.path, 'default'))).mode & 0o777, 0o700);
  t.is((await stat(lockPath(work.path, 'default'))).mode & 0o777, 0o600);
});
