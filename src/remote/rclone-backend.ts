// The rclone service as an ObjectBackend (placeholder until the service is implemented).

import { FragfsError } from '../errors.js';
import type { ObjectBackend } from './object-backend.js';
import type { RcloneStoreUrl } from './store-url.js';

export async function openRcloneBackend(url: RcloneStoreUrl): Promise<ObjectBackend> {
  throw new FragfsError('NOT_SUPPORTED', `${url.scheme} stores are not available yet`);
}
