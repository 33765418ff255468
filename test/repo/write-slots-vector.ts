// Writes fixtures/vectors/config/fragfs-json-v2-slots.json from the current code: the layout 2 vector
// of fragfs-json-v2.json with key slots (a labelled first passphrase, a second passphrase, a recovery
// key, an age recipient), the lines the `slots` tag covers and the tag. Run only on a deliberate
// format change (then update docs/FORMAT.md section 2.6.1):
//   npx tsc -p . && node dist/test/repo/write-slots-vector.js

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { newIdentity, recipientOf, sealTo } from '../../src/people/age-box.js';
import { RECOVERY_KEY, SECOND_PASSPHRASE, buildSlotsConfig } from './slots-vector-inputs.js';

const dir = fileURLToPath(new URL('../../../fixtures/vectors/config/', import.meta.url));
const base = JSON.parse(readFileSync(`${dir}fragfs-json-v2.json`, 'utf8'));
const masterKey = new Uint8Array(Buffer.from(base.masterKey, 'hex'));
const identity = await newIdentity();
const recipient = await recipientOf(identity);
const age = await sealTo([recipient], masterKey);
const { config, lines, tag } = await buildSlotsConfig({ base: JSON.parse(base.fragfsJson), masterKey, recipient, age });
writeFileSync(
  `${dir}fragfs-json-v2-slots.json`,
  `${JSON.stringify(
    {
      description:
        'fragfs-json-v2.json with key slots (docs/FORMAT.md 2.6.1): a labelled first passphrase, a second passphrase, a recovery key and an age recipient; every byte but the age file follows from fixed keys, salts and nonces',
      passphrase: base.passphrase,
      secondPassphrase: SECOND_PASSPHRASE,
      recoveryKey: RECOVERY_KEY,
      identity,
      recipient,
      masterKey: base.masterKey,
      space: 'default',
      slotsLines: lines,
      slotsTag: tag,
      fragfsJson: `${JSON.stringify(config, null, 2)}\n`,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${dir}fragfs-json-v2-slots.json`);
