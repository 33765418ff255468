// The live state's keys of one space, derived from its master key (live-crypto.ts says what each
// protects): whoever can open the space can open its live state, nobody else.

import type { Repo } from '../repo/repo.js';
import {
  LIVE_INDEX_KEY_CONTEXT,
  LIVE_NAME_KEY_CONTEXT,
  LIVE_NONCE_KEY_CONTEXT,
  LIVE_VALUE_KEY_CONTEXT,
  type LiveKeys,
} from './live-crypto.js';

export function liveKeysOf(repo: Pick<Repo, 'deriveKey'>): LiveKeys {
  return {
    index: repo.deriveKey(LIVE_INDEX_KEY_CONTEXT),
    name: repo.deriveKey(LIVE_NAME_KEY_CONTEXT),
    value: repo.deriveKey(LIVE_VALUE_KEY_CONTEXT),
    nonce: repo.deriveKey(LIVE_NONCE_KEY_CONTEXT),
  };
}
