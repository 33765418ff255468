// `fragfs group create|add|remove|list STORE NAME [RECIPIENT...]`: groups of people (age recipients)
// that access can be granted to; names nest like Internet domains (research.acme is inside acme).

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { adminKeyOf, changeGroups } from '../src/people/group-access.js';
import { Groups } from '../src/people/groups.js';
import { readPeople } from '../src/people/people-config.js';
import { openSpaceKeys, type OpenedSpace } from '../src/people/space-keys.js';
import { storeLocation } from '../src/remote/store-site.js';
import { DEFAULT_SPACE, Repo } from '../src/repo/repo.js';
import { action, addStoreOptions, printJson, readCredentials, type StoreOptions } from './common.js';

interface GroupCliOptions extends StoreOptions {
  json?: boolean;
}

const ACTIONS = ['create', 'add', 'remove', 'list'] as const;

/** The space's keys (groups are sealed under a key derived from its master key); no store is opened. */
async function openKeys(store: string, opts: GroupCliOptions): Promise<OpenedSpace> {
  const storePath = storeLocation(store);
  const space = opts.space ?? DEFAULT_SPACE;
  await Repo.checkExists(storePath, space);
  return openSpaceKeys(storePath, space, await readCredentials(opts));
}

export function registerGroup(program: Command): void {
  addStoreOptions(
    program
      .command('group')
      .description('manage groups: create NAME [RECIPIENT...], add NAME RECIPIENT..., remove NAME RECIPIENT... (starts a new epoch), list [NAME]')
      .argument('<action>', ACTIONS.join('|'))
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('[name]', 'the group, e.g. acme or research.acme')
      .argument('[recipients...]', 'age recipients (age1...)')
      .option('--json', 'list: print JSON'),
  ).action(
    action(async (what: string, store: string, name: string | undefined, recipients: string[], opts: GroupCliOptions) => {
      if (!(ACTIONS as readonly string[]).includes(what)) throw new FragfsError('USAGE', `group: unknown action ${JSON.stringify(what)} (${ACTIONS.join(', ')})`);
      if (what !== 'list' && name === undefined) throw new FragfsError('USAGE', `group ${what} needs a group name`);
      if ((what === 'add' || what === 'remove') && recipients.length === 0) throw new FragfsError('USAGE', `group ${what} needs at least one recipient`);
      const opened = await openKeys(store, opts);
      if (what === 'list') {
        const groups = Groups.open(await readPeople(opened.storePath, opened.space), adminKeyOf(opened));
        const shown = groups.list().filter((g) => name === undefined || g.admin.name === name || g.admin.name.endsWith(`.${name}`));
        const rows = shown.map((g) => ({
          name: g.admin.name,
          epoch: g.record.epoch,
          recipient: g.record.recipient,
          members: g.admin.members,
          inside: groups.parentOf(g.admin.name)?.admin.name ?? null,
        }));
        if (opts.json) printJson(rows);
        else for (const r of rows) process.stdout.write(`${r.name}  epoch ${r.epoch}  ${r.members.length} members${r.inside ? `  (inside ${r.inside})` : ''}\n${r.members.map((m) => `  ${m}\n`).join('')}`);
        return;
      }
      const message = await changeGroups(opened, async (groups) => {
        if (what === 'create') {
          const g = await groups.create(name!, recipients);
          return `created group ${name} (${g.admin.members.length} members)`;
        }
        if (what === 'add') {
          groups.add(name!, recipients);
          return `added ${recipients.length} to ${name}`;
        }
        const rotated = await groups.remove(name!, recipients);
        return `removed ${recipients.length} from ${name}; new epoch of ${rotated.map((g) => `${g.admin.name} (${g.record.epoch})`).join(', ')}: what is shared from now on is out of their reach`;
      });
      process.stderr.write(`${message}\n`);
    }),
  );
}
