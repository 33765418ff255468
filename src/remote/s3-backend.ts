// The s3 service as an ObjectBackend (placeholder until the service is implemented).

import { FragfsError } from '../errors.js';
import type { ObjectBackend } from './object-backend.js';
import type { S3StoreUrl } from './store-url.js';

export async function openS3Backend(url: S3StoreUrl): Promise<ObjectBackend> {
  throw new FragfsError('NOT_SUPPORTED', `${url.scheme} stores are not available yet`);
}
