import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { git, makeGitRemote, type GitRemote } from '../helpers/git.js';
import { isBuildFinished, isBuildStarted, writeFile, type LogEvent } from '../helpers/cli.js';
import { hasPostgres, startPostgres, type PgServer } from '../helpers/postgres.js';
import { clusterYamlHead, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/wait.js';

jest.setTimeout(120_000);

const isRetired = (site: string) => (e: LogEvent) => e.msg === 'site retired' && e.branch === site;

/**
 * A pattern on two hosts: host a (listed first) decides the sites, each new
 * site goes to the host holding fewest and stays there, and a site is built
 * and retired on its host.
 */
(hasPostgres() ? describe : describe.skip)('a pattern placed on several hosts', () => {
  const tmp = tempDir('stagepost-cluster-pattern-');
  let pgServer: PgServer;
  let remote: GitRemote;
  let cluster: TestCluster;

  beforeAll(async () => {
    pgServer = (await startPostgres({ name: 'pattern' }))!;
    remote = makeGitRemote(tmp.dir, 'app');
    remote.commit('main');
    for (const b of ['feature/x', 'feature/y', 'feature/z']) remote.commit(b);
    const config = writeFile(
      path.join(tmp.dir, 'ci.yaml'),
      `${clusterYamlHead()}http:
  listen: 127.0.0.1:1
steps:
  - { name: mark, run: "echo {branch} > built-by-step" }
branches:
  staging:
    host: a
    dir: ./sites/staging
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: main }]
  review:
    host: [a, b]
    match: { source: app, refs: "feature/*", retire_after: 2 }
    dir: ./review/{branch}
    port: 7100-7109
    sources: [{ name: app, vcs: git, url: "${remote.url}" }]
`,
    );
    cluster = await startCluster(config, ['a', 'b'], pgServer.url);
  });

  afterAll(async () => {
    await cluster?.stopAll();
    await pgServer?.destroy();
    tmp.cleanup();
  });

  const builtOn = (host: string) =>
    new Set(cluster.hosts[host].events.filter(isBuildStarted()).map((e) => e.branch));

  test('each new site goes to the host holding fewest, and is built there only', async () => {
    await cluster.hosts.a.waitFor(isBuildFinished('feature-x'), { what: 'feature-x on a' });
    await cluster.hosts.a.waitFor(isBuildFinished('feature-z'), { what: 'feature-z on a' });
    await cluster.hosts.b.waitFor(isBuildFinished('feature-y'), { what: 'feature-y on b' });
    expect(builtOn('a')).toEqual(new Set(['staging', 'feature-x', 'feature-z']));
    expect(builtOn('b')).toEqual(new Set(['feature-y']));
    const status = await cluster.waitStatus(
      'a',
      (s) => s.branches.find((b) => b.name === 'feature-y')?.lastBuild?.result === 'success',
      "feature-y's build in a's status",
    );
    const hostOf = Object.fromEntries(status.branches.map((b) => [b.name, b.host]));
    expect(hostOf).toMatchObject({ 'feature-x': 'a', 'feature-y': 'b', 'feature-z': 'a' });
    // Ports of the range are unique across the hosts.
    const ports = status.branches.filter((b) => b.pattern).map((b) => b.port);
    expect(new Set(ports).size).toBe(3);
  });

  test('a site is retired on its own host; a new one takes the free place', async () => {
    git(remote.work, ['push', '-q', 'origin', ':refs/heads/feature/y']);
    await cluster.hosts.b.waitFor(isRetired('feature-y'), { what: 'feature-y retired on b' });
    await until(
      () => !existsSync(path.join(tmp.dir, 'review', 'feature-y')),
      "feature-y's directory removed",
    );
    expect(cluster.hosts.a.count(isRetired('feature-y'))).toBe(0);
    remote.commit('feature/w');
    await cluster.hosts.b.waitFor(isBuildFinished('feature-w'), { what: 'feature-w on b' });
    expect(builtOn('a').has('feature-w')).toBe(false);
  });
});
