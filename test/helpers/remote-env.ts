// Where the test servers of the remote backends are: scripts/test.sh starts each one once for the
// whole suite (scripts/test-servers.sh) and exports its address as FRAGFS_TEST_* variables. A test
// file asks for the variables it needs; without them it registers one test that says why: failing
// under CI (which always starts the servers) and skipped elsewhere, as a run of one test file by
// hand does not start them.

import type { TestFn } from 'ava';

/** The variables' values, or undefined (with the reporting test registered) when one is missing. */
export function serverEnv(test: TestFn, server: string, names: readonly string[]): Record<string, string> | undefined {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length === 0) return Object.fromEntries(names.map((n) => [n, process.env[n]!]));
  const why = `${server}: no test server (${missing.join(', ')} unset; scripts/test.sh starts it with scripts/test-servers.sh)`;
  if (process.env['CI']) {
    test(why, (t) => {
      t.log(why);
      t.fail(`the ${server} tests need their server under CI`);
    });
  } else {
    test.skip(why, () => undefined);
  }
  return undefined;
}

/** The variables scripts/test-servers.sh exports for its radosgw. */
export const S3_TEST_VARS = ['FRAGFS_TEST_S3_ENDPOINT', 'FRAGFS_TEST_S3_ACCESS_KEY', 'FRAGFS_TEST_S3_SECRET_KEY'] as const;

/**
 * The AWS environment that points a fragfs process (or this one) at the test radosgw, through
 * `endpoint` when given (a relay) and with another secret when given (refused credentials). The
 * machine's AWS_CA_BUNDLE is no concern of a plain-HTTP loopback server.
 */
export function s3ClientEnv(s3: Record<string, string>, o: { endpoint?: string; secret?: string } = {}): Record<string, string | undefined> {
  return {
    AWS_ENDPOINT_URL: o.endpoint ?? s3['FRAGFS_TEST_S3_ENDPOINT'],
    AWS_ACCESS_KEY_ID: s3['FRAGFS_TEST_S3_ACCESS_KEY'],
    AWS_SECRET_ACCESS_KEY: o.secret ?? s3['FRAGFS_TEST_S3_SECRET_KEY'],
    AWS_REGION: 'us-east-1',
    AWS_CA_BUNDLE: undefined,
  };
}
