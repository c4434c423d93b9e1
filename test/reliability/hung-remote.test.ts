/**
 * A remote that answers ls-refs but never the fetch (issue 16, point 6): a
 * real `git daemon` behind a TCP proxy that stops passing bytes once the
 * client asks for a pack. The checkout is ended by builds.checkout_stall or
 * builds.checkout_timeout, and the other branch builds meanwhile, with one
 * build slot for both.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { isBuildFinished, type LogEvent } from '../helpers/cli.js';
import { freePort, startServer } from '../plugins/vcs-helpers.js';
import { Daemons, RECORD_STEPS, gitBranchYaml, writeCi } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let remote: GitRemote;
let gitDaemon: Awaited<ReturnType<typeof startServer>>;
let proxy: net.Server;
let proxyPort: number;
const held: net.Socket[] = [];
let fetchesHeld = 0;
const daemons = new Daemons();

beforeEach(async () => {
  t = tempDir('stagepost-hung-');
  remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('good');
  const daemonPort = await freePort();
  // In its own process group, stopped as a group: `git daemon` runs `git-daemon` as a child.
  gitDaemon = await startServer(
    'git',
    [
      'daemon',
      '--reuseaddr',
      '--export-all',
      `--base-path=${t.dir}`,
      '--listen=127.0.0.1',
      `--port=${daemonPort}`,
      t.dir,
    ],
    daemonPort,
  );
  // Passes ls-refs through; once a client sends `command=fetch`, both directions stop.
  proxy = net.createServer((client) => {
    held.push(client);
    const upstream = net.connect(daemonPort, '127.0.0.1');
    held.push(upstream);
    let hung = false;
    client.on('data', (d: Buffer) => {
      if (hung) return;
      if (d.toString('latin1').includes('command=fetch')) {
        hung = true;
        fetchesHeld += 1;
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!hung) client.write(d);
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      if (!hung) client.destroy();
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyPort = (proxy.address() as net.AddressInfo).port;
});

afterEach(async () => {
  await daemons.killAll();
  for (const s of held.splice(0)) s.destroy();
  await new Promise((r) => proxy.close(r));
  await gitDaemon.stop();
  fetchesHeld = 0;
  t.cleanup();
});

function config(builds: string): string {
  return writeCi(
    t.dir,
    `${RECORD_STEPS}branches:
${gitBranchYaml('hung', `git://127.0.0.1:${proxyPort}/repo.git`, 'main')}${gitBranchYaml('good', remote.url, 'good')}`,
    { builds },
  );
}

const finished = (branch: string) => (e: LogEvent) => isBuildFinished(branch)(e);

test('a fetch that hangs is ended after builds.checkout_stall without progress; the other branch builds meanwhile on the one slot', async () => {
  const file = config(
    '{ concurrency: 1, step_timeout: 30s, checkout_stall: 1s, checkout_timeout: 5m }',
  );
  const d = daemons.start(file);
  const [hungBuild] = await d.waitFor(finished('hung'), { what: 'the hung checkout ended' });
  expect(hungBuild).toMatchObject({ result: 'failure', failedStep: 'checkout' });
  expect(hungBuild.durationMs as number).toBeLessThan(10_000);
  expect(fetchesHeld).toBeGreaterThan(0);
  const log = readFileSync(
    path.join(t.dir, 'state', 'logs', 'hung', `${hungBuild.build as number}.log`),
    'utf8',
  );
  expect(log).toMatch(/no progress for 1\.0s \(builds\.checkout_stall\)/);
  await d.waitFor(finished('good'), { what: 'good built' });

  // Both move on: the hung remote hangs again, good is still built within a few seconds.
  remote.commit('main');
  const rev = remote.commit('good');
  const committed = Date.now();
  await d.waitFor(
    (e) =>
      e.msg === 'build started' &&
      e.branch === 'good' &&
      JSON.stringify(e.revisions).includes(rev.slice(0, 7)),
    { what: 'good started on its new commit' },
  );
  await d.waitFor(finished('good'), { count: 2 });
  expect(Date.now() - committed).toBeLessThan(10_000);
  await d.waitFor(finished('hung'), { count: 2 });
  expect(d.child.exitCode).toBeNull();
}, 40_000);

test('a checkout longer than builds.checkout_timeout is ended even while the stall bound is far away', async () => {
  const file = config(
    '{ concurrency: 1, step_timeout: 30s, checkout_stall: 5m, checkout_timeout: 2s }',
  );
  const d = daemons.start(file);
  const [hungBuild] = await d.waitFor(finished('hung'), { what: 'the hung checkout ended' });
  expect(hungBuild).toMatchObject({ result: 'failure', failedStep: 'checkout' });
  expect(hungBuild.durationMs as number).toBeGreaterThanOrEqual(1900);
  expect(hungBuild.durationMs as number).toBeLessThan(10_000);
  const log = readFileSync(
    path.join(t.dir, 'state', 'logs', 'hung', `${hungBuild.build as number}.log`),
    'utf8',
  );
  expect(log).toMatch(/longer than 2\.0s \(builds\.checkout_timeout\)/);
  await d.waitFor(finished('good'), { what: 'good built' });
}, 30_000);
