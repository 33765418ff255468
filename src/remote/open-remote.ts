// The one place that turns a remote store URL into an open ObjectBackend with retries, timeouts and
// bounded concurrency. Each service's SDK is imported only when a URL names it, so a command on a
// local store never pays for loading them.

import type { ObjectBackend } from './object-backend.js';
import { ResilientBackend, type ResilienceOptions } from './resilient-backend.js';
import type { RemoteStoreUrl } from './store-url.js';

export async function openObjectBackend(url: RemoteStoreUrl, o: ResilienceOptions = {}): Promise<ResilientBackend> {
  let raw: ObjectBackend;
  switch (url.scheme) {
    case 's3':
      raw = await (await import('./s3-backend.js')).openS3Backend(url);
      break;
    case 'sftp':
      raw = await (await import('./sftp-backend.js')).openSftpBackend(url);
      break;
    case 'azure':
      raw = await (await import('./azure-backend.js')).openAzureBackend(url);
      break;
    case 'rclone':
      raw = await (await import('./rclone-backend.js')).openRcloneBackend(url);
      break;
  }
  return new ResilientBackend(raw, o);
}
