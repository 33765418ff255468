// The start-up interrupt budget (cli/start-up-tiering.ts): which commands get it, and that the budget
// it restores is the running V8's own default.

import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { START_UP_INTERRUPT_BUDGET, tierLaterWhileStarting, V8_DEFAULT_INTERRUPT_BUDGET } from '../../cli/start-up-tiering.js';

const run = promisify(execFile);

test("the budget restored after start-up is this V8's default, and the start-up one is larger", async (t) => {
  const { stdout } = await run(process.execPath, ['--v8-options'], { maxBuffer: 16 * 1024 * 1024 });
  const m = /--interrupt-budget \(.*\)\n\s+type: int\s+default: --interrupt-budget=(\d+)/.exec(stdout);
  t.truthy(m, 'node --v8-options lists --interrupt-budget with its default');
  if (process.versions.v8.startsWith('11.3.')) t.is(Number(m![1]), V8_DEFAULT_INTERRUPT_BUDGET);
  t.true(START_UP_INTERRUPT_BUDGET > V8_DEFAULT_INTERRUPT_BUDGET);
});

test('short commands start with the larger budget; a mount, and another V8, keep the default', (t) => {
  const node20 = process.versions.v8.startsWith('11.3.');
  t.is(tierLaterWhileStarting(['node', 'fragfs', 'stats', 'store']), node20);
  t.is(tierLaterWhileStarting(['node', 'fragfs', 'put', 'store', 'tree']), node20);
  t.false(tierLaterWhileStarting(['node', 'fragfs', 'mount', 'store', 'mnt']));
});
