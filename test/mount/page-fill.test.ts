// Page-cache fills through a real mount: a small read hands the rest of its block to the kernel
// (kernel-adapter.ts fillAround). A fill carries the block as committed when it was made, and the
// kernel copies it over whatever its pages hold, so these tests race fills against writers, O_TRUNC
// opens and truncates, and check that every read after a writer closes sees the writer's bytes.

import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { ensurePatchedAddon, fuseAvailable, initStore, makeEnv, mount } from './helpers.js';

const run = promisify(execFile);
const enabled = fuseAvailable();
if (enabled) test.before(ensurePatchedAddon);
const maybe = enabled ? test : test.skip;

// A reader thread keeps making random 4 KiB reads (each may queue a fill of its 1 MiB block) while the
// main thread writes through short-lived handles, truncates, and checks each change right after close.
const RACE = String.raw`
import os, random, sys, threading
path = sys.argv[1]
rounds = int(sys.argv[2])
rng = random.Random(7)
MIB = 1 << 20
model = bytearray(os.urandom(6 * MIB))
with open(path, 'wb') as f:
    f.write(model)
stop = False
reads = 0
def reader():
    global reads
    r = random.Random(11)
    fd = os.open(path, os.O_RDONLY)
    while not stop:
        size = os.fstat(fd).st_size
        if size > 0:
            os.pread(fd, 4096, r.randrange(0, size) & ~4095)
            reads += 1
            # Clean pages dropped now and then, so reads keep reaching fragfs and keep making fills.
            if reads % 32 == 0: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
threads = [threading.Thread(target=reader) for _ in range(2)]
for th in threads: th.start()
def check(what):
    with open(path, 'rb') as f:
        got = f.read()
    if got != bytes(model):
        bad = next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), min(len(got), len(model)))
        print(f'{what}: read {len(got)} bytes, expected {len(model)}; first difference at byte {bad}', flush=True)
        sys.exit(1)
for i in range(rounds):
    kind = rng.randrange(10)
    if kind < 6:
        fd = os.open(path, os.O_RDWR)
        for _ in range(rng.randrange(1, 4)):
            off = rng.randrange(0, len(model) + 4096)
            data = os.urandom(rng.choice([1, 4096, 5000, 65536]))
            os.pwrite(fd, data, off)
            if off > len(model): model.extend(bytes(off - len(model)))
            end = off + len(data)
            if end > len(model): model.extend(bytes(end - len(model)))
            model[off:end] = data
        os.close(fd)
    elif kind < 8:
        size = rng.randrange(0, 7 * MIB)
        os.truncate(path, size)
        if size < len(model): del model[size:]
        else: model.extend(bytes(size - len(model)))
    else:
        model = bytearray(os.urandom(rng.randrange(0, 3 * MIB)))
        with open(path, 'wb') as f:
            f.write(model)
    # Random reads of the changed file (what a stale fill would spoil), then the whole of it.
    fd = os.open(path, os.O_RDONLY)
    for _ in range(64):
        if not model: break
        off = rng.randrange(0, len(model)) & ~4095
        got = os.pread(fd, 4096, off)
        if got != bytes(model[off:off + 4096]):
            print(f'round {i}: 4 KiB read at {off} differs from what was written', flush=True)
            sys.exit(1)
    os.close(fd)
    if i % 10 == 9: check(f'round {i}')
stop = True
for th in threads: th.join()
check('at the end')
print(f'ok {reads}', flush=True)
`;

maybe('random reads that fill the page cache never hide a write, a truncate or an O_TRUNC open', async (t) => {
  t.timeout(180_000);
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const r = await run('python3', ['-c', RACE, `${m.mountpoint}/race`, '150'], { maxBuffer: 1 << 20 }).catch((err: { stdout?: string; stderr?: string }) => err);
  t.regex(String(r.stdout ?? ''), /^ok \d+/m, `${r.stdout ?? ''}${r.stderr ?? ''}`);
  t.log(`concurrent 4 KiB reads: ${/ok (\d+)/.exec(String(r.stdout))?.[1]}`);
});

maybe('a small read fills the page cache with its whole block: later reads of it need no request', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const file = `${m.mountpoint}/four-mib`;
  // Written, then dropped from the page cache (fio's invalidate=1 does the same), then one 4 KiB read.
  // close() returns before the kernel's RELEASE is served and the written blocks are committed, and
  // until then no fill is made (it could be older than the kernel's pages): the read is tried again,
  // for up to 10 s, until the writer is gone.
  const script = String.raw`
import os, sys, subprocess, time
path = sys.argv[1]
data = os.urandom(4 << 20)
with open(path, 'wb') as f: f.write(data)
def resident():
    return subprocess.run(['fincore', '--bytes', '--noheadings', '--output', 'RES', path], capture_output=True, text=True).stdout.strip()
deadline = time.time() + 10
tries = 0
while True:
    tries += 1
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.pread(fd, 4096, (1 << 20) + 8192)
    os.close(fd)
    time.sleep(0.1)
    res = resident()
    if res != '4096' or time.time() > deadline: break
with open(path, 'rb') as f: same = f.read() == data
print(res, same, tries)
`;
  const r = await run('python3', ['-c', script, file]);
  const [res, same, tries] = r.stdout.trim().split(/\s+/);
  t.log(`small reads until the block was filled: ${tries}`);
  t.is(same, 'True', 'the file reads back as written');
  // The block holding the read is 1 MiB: all of it is in the page cache, the other blocks are not.
  t.is(Number(res), 1 << 20, `page cache holds ${res} bytes of the file`);
});
