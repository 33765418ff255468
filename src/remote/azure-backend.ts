// The azure service as an ObjectBackend (placeholder until the service is implemented).

import { FragfsError } from '../errors.js';
import type { ObjectBackend } from './object-backend.js';
import type { AzureStoreUrl } from './store-url.js';

export async function openAzureBackend(url: AzureStoreUrl): Promise<ObjectBackend> {
  throw new FragfsError('NOT_SUPPORTED', `${url.scheme} stores are not available yet`);
}
