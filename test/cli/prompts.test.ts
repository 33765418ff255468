// Passphrases typed at a terminal are never shown: passwd asks three times on one terminal (the
// current passphrase, the new one twice), and none of them is echoed back.

import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CLI_PATH, TEST_PASSPHRASE, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

/** Runs the CLI on a pseudo-terminal (python3's pty), answering each prompt once it is shown. */
function onTerminal(args: string[], answers: [string, string][]): Promise<{ code: number; screen: string }> {
  const script = `
import json, os, pty, sys, time
args, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    env = {k: v for k, v in os.environ.items() if not k.startswith('FRAGFS_')}
    os.execve(args[0], args, env)
out = b''
def read_until(s):
    global out
    end = time.time() + 60
    while (s is None or s.encode() not in out) and time.time() < end:
        try:
            d = os.read(fd, 1024)
        except OSError:
            return
        if not d:
            return
        out += d
for prompt, answer in answers:
    read_until(prompt)
    time.sleep(0.3)
    os.write(fd, (answer + '\\r').encode())
read_until(None)
sys.stdout.write(json.dumps({'code': os.waitpid(pid, 0)[1] >> 8, 'screen': out.decode('utf8', 'replace')}))
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, JSON.stringify([process.execPath, CLI_PATH, ...args]), JSON.stringify(answers)]);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', () => resolve(JSON.parse(stdout)));
  });
}

test('passwd on a terminal: three hidden prompts, nothing typed is shown, and the new passphrase opens', async (t) => {
  const work = await tempDir('fragfs-prompts-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await createStore(storePath, 'dir');
  const r = await onTerminal(['passwd', storePath], [
    ['Current passphrase:', TEST_PASSPHRASE],
    ['New passphrase:', 'typed-new-secret'],
    ['New passphrase again:', 'typed-new-secret'],
  ]);
  t.is(r.code, 0, r.screen);
  t.regex(r.screen, /Current passphrase:.*\n.*New passphrase:.*\n.*New passphrase again:/s);
  t.regex(r.screen, /changed the passphrase/);
  t.false(r.screen.includes('typed-new-secret'), r.screen);
  t.false(r.screen.includes('typed-new'), r.screen);
  t.false(r.screen.includes(TEST_PASSPHRASE.slice(0, 12)), r.screen);
  const opened = await runCli(['snapshots', storePath], { env: { FRAGFS_PASSPHRASE: 'typed-new-secret' } });
  t.is(opened.code, 0, opened.stderr);
});
