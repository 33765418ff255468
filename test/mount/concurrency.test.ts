// Concurrent writers, a 3 GiB sparse file and random writes/truncates against a model, on a real
// mount (driven by child processes and async fs from this process, which serves nothing).

import test from 'ava';
import fc from 'fast-check';
import { open, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePatchedAddon, type Env, fuseAvailable, initStore, makeEnv, mount, type Mounted, run, sh, sharedCtx } from './helpers.js';

const enabled = fuseAvailable();
const maybe = enabled ? test : test.skip;
const shared = sharedCtx();
let env: Env;
let m: Mounted;
if (enabled) {
  test.before(async () => {
    await ensurePatchedAddon();
    env = await makeEnv(shared);
    m = await mount(shared, env, await initStore(shared, env), 'mnt');
  });
  test.after.always(() => shared.cleanup());
}

maybe('concurrent writers to different files', async (t) => {
  const d = join(m.mountpoint, 'many');
  await sh(t, `mkdir ${d} && head -c 24M /dev/urandom > ${env.root}/src.bin`);
  await sh(t, `for i in $(seq 1 8); do (dd if=${env.root}/src.bin of=${d}/f$i bs=$((i * 7919)) 2>/dev/null) & done; wait`);
  await sh(t, `for i in $(seq 1 8); do cmp ${env.root}/src.bin ${d}/f$i || exit 1; done`);
});

maybe('concurrent writers to one file at different offsets', async (t) => {
  const f = join(m.mountpoint, 'shared.bin');
  // 8 writers, each its own 3 MiB region (not block aligned), all at once.
  await sh(t, `for i in $(seq 0 7); do (yes "writer $i" | head -c 3145728 | dd of=${f} bs=65536 seek=$((i * 3145728)) oflag=seek_bytes conv=notrunc 2>/dev/null) & done; wait`);
  const r = await run('python3', [
    '-c',
    `
import sys
data = open(sys.argv[1], 'rb').read()
ok = len(data) == 8 * 3145728
for i in range(8):
    want = (b'writer %d\\n' % i) * (3145728 // 9 + 1)
    ok = ok and data[i * 3145728:(i + 1) * 3145728] == want[:3145728]
print(ok)
`,
    f,
  ]);
  t.is(r.stdout.trim(), 'True', r.stderr);
});

maybe('a 3 GiB sparse file: size, tail, holes read as zeros, little space used', async (t) => {
  const f = join(m.mountpoint, 'sparse');
  await sh(t, `truncate -s 3G ${f} && printf 'THE END' | dd of=${f} bs=1 seek=$((3 * 1024 * 1024 * 1024 - 7)) conv=notrunc 2>/dev/null`);
  const st = await sh(t, `stat -c '%s %b' ${f}`);
  const [size, blocks] = st.stdout.trim().split(' ').map(Number);
  t.is(size, 3 * 1024 ** 3);
  t.true(blocks! * 512 < 64 * 1024 * 1024, `allocated ${blocks! * 512} bytes`);
  t.is((await sh(t, `tail -c 7 ${f}`)).stdout, 'THE END');
  await sh(t, `dd if=${f} bs=1M skip=1500 count=4 2>/dev/null | cmp -n 4194304 - /dev/zero`);
  await sh(t, `dd if=${f} bs=1M skip=3071 count=1 2>/dev/null | head -c 1048569 | cmp - <(head -c 1048569 /dev/zero)`);
});

maybe('random writes, truncates and reads match an in-memory model', async (t) => {
  const MAX = 3 * 1024 * 1024;
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), pos: fc.nat(MAX), len: fc.integer({ min: 1, max: 300_000 }), byte: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), size: fc.nat(MAX) }),
    fc.record({ kind: fc.constant('reopen' as const) }),
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      const p = join(m.mountpoint, `model-${run++}`);
      let model = Buffer.alloc(0);
      let fh = await open(p, 'w+');
      try {
        for (const o of ops) {
          if (o.kind === 'write') {
            const chunk = Buffer.alloc(o.len, o.byte);
            await fh.write(chunk, 0, o.len, o.pos);
            if (model.length < o.pos + o.len) model = Buffer.concat([model, Buffer.alloc(o.pos + o.len - model.length)]);
            chunk.copy(model, o.pos);
          } else if (o.kind === 'truncate') {
            await truncate(p, o.size);
            model = o.size <= model.length ? model.subarray(0, o.size) : Buffer.concat([model, Buffer.alloc(o.size - model.length)]);
          } else {
            await fh.close();
            fh = await open(p, 'r+');
          }
        }
        const st = await fh.stat();
        const back = Buffer.alloc(model.length);
        const { bytesRead } = await fh.read(back, 0, model.length, 0);
        return st.size === model.length && bytesRead === model.length && back.equals(model);
      } finally {
        await fh.close();
      }
    }),
    { numRuns: 25 },
  );
  t.pass();
});
