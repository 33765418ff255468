// Child process of lmdb-reopen.test.ts. `writer DIR MS`: commits puts and removes for MS ms and
// checks after each round that every key reads back as the model says; prints "writes N bad B".
// `reopener DIR MS`: opens the environment read-only and closes it again, as fast as it can.

import { open } from 'lmdb';

const [role, dir, ms] = process.argv.slice(2) as [string, string, string];
const end = Date.now() + Number(ms);
const options = { path: dir, maxDbs: 4, mapSize: 1 << 30 };

if (role === 'writer') {
  const root = open({ ...options, noSync: true });
  const db = root.openDB({ name: 'records', keyEncoding: 'binary', encoding: 'binary' });
  const model = new Map<string, Buffer>();
  let writes = 0;
  let bad = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) {
      const key = String(Math.floor(Math.random() * 3000)).padStart(8, '0');
      if (Math.random() < 0.3 && model.has(key)) {
        root.transactionSync(() => db.removeSync(Buffer.from(key)));
        model.delete(key);
      } else {
        const v = Buffer.alloc(50 + Math.floor(Math.random() * 3000), writes & 255);
        root.transactionSync(() => db.putSync(Buffer.from(key), v));
        model.set(key, v);
      }
      writes++;
    }
    for (const [key, v] of model) {
      const got = db.getBinary(Buffer.from(key));
      if (!got || !Buffer.from(got).equals(v)) bad++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await root.close();
  console.log(`writes ${writes} bad ${bad}`);
} else {
  let opens = 0;
  while (Date.now() < end) {
    const root = open({ ...options, readOnly: true });
    root.openDB({ name: 'records', keyEncoding: 'binary', encoding: 'binary' });
    await root.close();
    opens++;
    await new Promise((r) => setTimeout(r, 2));
  }
  console.log(`opens ${opens}`);
}
