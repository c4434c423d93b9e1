import { afterAll, expect, test } from '@jest/globals';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { DaemonProcess, writeFile } from '../helpers/cli.js';
import { freePort } from '../plugins/vcs-helpers.js';

const tmp = tempDir('stagepost-cluster-down-');
afterAll(() => tmp.cleanup());

test('a host whose database cannot be reached at start exits 1, saying why, password masked', async () => {
  const port = await freePort();
  const config = writeFile(
    path.join(tmp.dir, 'ci.yaml'),
    `version: 1
cluster:
  database: \${STAGEPOST_DATABASE_URL}
branches:
  s1:
    host: a
    dir: ./sites/s1
    sources: [{ name: app, vcs: git, url: "file:///nowhere.git", ref: main }]
`,
  );
  const daemon = new DaemonProcess(config, {
    STAGEPOST_HOST: 'a',
    STAGEPOST_DATABASE_URL: `postgres://stagepost:Hidden-pw7@127.0.0.1:${port}/stagepost`,
  });
  expect(await daemon.exited).toBe(1);
  expect(daemon.stderr).toContain(
    'cannot reach the cluster database postgres://stagepost:[secure]@127.0.0.1',
  );
  expect(daemon.stderr).toContain('start PostgreSQL or correct cluster.database');
  expect(daemon.stderr).not.toContain('Hidden-pw7');
});
