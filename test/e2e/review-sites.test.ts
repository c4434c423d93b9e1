/**
 * Review sites from a branch pattern, against a real git remote and the real
 * daemon: branches pushed and deleted while it runs make sites that build and
 * retire, from the one query per cycle the poller makes anyway; ports are
 * reused; an outage and an empty answer retire nothing; hostile branch names
 * give safe names and reach no shell.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { BIN, DaemonProcess, isBuildFinished, isPolled, runCli } from '../helpers/cli.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { execFileSync } from 'node:child_process';
import type { StatusDocument } from '../../src/api.js';
import { parseMail, startSmtp, type TestSmtp } from '../notify/helpers.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
let smtp: TestSmtp | null = null;
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  await smtp?.close();
  smtp = null;
  t.cleanup();
});

const HOSTILE = 'feature/$(touch${IFS}pwned)';

async function status(port: number): Promise<StatusDocument> {
  return (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as StatusDocument;
}

const isRetired = (site: string) => (e: { msg: string; branch?: unknown }) =>
  e.msg === 'site retired' && e.branch === site;
const answered = (e: { msg: string; branches?: unknown; error?: unknown }) =>
  isPolled('pattern:review')(e as never) && e.error === null;

function startWith(remoteUrl: string, httpPort: number, extra = '', top = ''): string {
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
http: { listen: ${httpPort} }
${top}branches:
  staging:
    dir: ./sites/staging
    port: 7100
    sources: [{ name: app, vcs: git, url: "${remoteUrl}", ref: main, path: src/app }]
  review:
    match: { source: app, refs: "feature/*" }
    dir: ./review/{branch}
    port: 7100-7109
${extra}    steps: [{ name: mark, run: "echo {branch} > built-by-step" }]
    sources: [{ name: app, vcs: git, url: "${remoteUrl}", path: src/app }]
`,
  );
  daemon = new DaemonProcess(file);
  return file;
}

test('sites follow the branches: appear, build, retire after 3 answers, ports reused', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('feature/a');
  remote.commit('feature/Foo_Bar');
  remote.commit(HOSTILE);
  remote.commit('other/not-matched');
  const httpPort = await freePort();
  const file = startWith(remote.url, httpPort);
  for (const site of ['feature-a', 'feature-foo-bar', 'feature-touch-ifs-pwned', 'staging'])
    await daemon!.waitFor(isBuildFinished(site), { what: `the first build of ${site}` });

  const doc = await status(httpPort);
  const sites = Object.fromEntries(doc.branches.map((b) => [b.name, b]));
  expect(Object.keys(sites).sort()).toEqual([
    'feature-a',
    'feature-foo-bar',
    'feature-touch-ifs-pwned',
    'staging',
  ]);
  // One port each from the range, past the fixed branch's 7100.
  expect(
    ['feature-a', 'feature-foo-bar', 'feature-touch-ifs-pwned'].map((n) => sites[n].port).sort(),
  ).toEqual([7101, 7102, 7103]);
  const portA = sites['feature-a'].port;
  expect(sites['feature-a']).toMatchObject({
    pattern: { name: 'review', ref: 'feature/a' },
    dir: path.join(t.dir, 'review', 'feature-a'),
    lastBuild: { result: 'success' },
  });
  expect(sites['feature-touch-ifs-pwned'].pattern?.ref).toBe(HOSTILE);
  const hostileDir = path.join(t.dir, 'review', 'feature-touch-ifs-pwned');
  expect(readFileSync(path.join(hostileDir, 'built-by-step'), 'utf8')).toBe(
    'feature-touch-ifs-pwned\n',
  );
  expect(git(path.join(hostileDir, 'src/app'), ['rev-parse', 'HEAD'])).toBe(remote.head(HOSTILE));
  // No shell ever saw the branch name.
  for (const dir of [t.dir, hostileDir, path.join(hostileDir, 'src/app'), process.cwd()])
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);

  // The pattern is answered by the same one query as the branches on that repository.
  const last = daemon!.events.filter(answered).at(-1)!;
  expect([...(last.branches as string[])].sort()).toEqual([
    'feature-a',
    'feature-foo-bar',
    'feature-touch-ifs-pwned',
    'pattern:review',
    'staging',
  ]);
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  expect(metrics).toMatch(/branch="feature-foo-bar"/);
  expect(metrics).not.toContain('pattern:review');
  const cli = await runCli(['status', '--config', file]);
  expect(cli.stdout).toMatch(/feature-foo-bar/);

  // Deleted: retired only after three successful answers without it.
  git(remote.bare, ['branch', '-D', 'feature/a']);
  const before = daemon!.count(answered);
  await daemon!.waitFor(isRetired('feature-a'), { what: 'feature-a retired' });
  const retiredAt = daemon!.events.findIndex(isRetired('feature-a'));
  const answersBefore = daemon!.events.slice(0, retiredAt).filter(answered).length;
  expect(answersBefore - before).toBeGreaterThanOrEqual(3);
  await daemon!.waitFor(isPolled('feature-foo-bar'), {
    count: daemon!.count(isPolled('feature-foo-bar')) + 1,
  });
  expect((await status(httpPort)).branches.map((b) => b.name)).not.toContain('feature-a');
  // Its history stays readable.
  const history = await runCli(['history', 'feature-a', '--json', '--config', file]);
  expect(history.code).toBe(0);
  expect((JSON.parse(history.stdout) as { builds: Array<{ result: string }> }).builds).toEqual([
    expect.objectContaining({ result: 'success' }),
  ]);

  // A new branch takes the freed port.
  remote.commit('feature/new');
  await daemon!.waitFor(isBuildFinished('feature-new'), { what: 'the build of feature-new' });
  const fresh = (await status(httpPort)).branches.find((b) => b.name === 'feature-new')!;
  expect(fresh.port).toBe(portA);
});

test('an outage and an empty answer retire nothing', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('feature/a');
  remote.commit('feature/b');
  const httpPort = await freePort();
  startWith(remote.url, httpPort);
  await daemon!.waitFor(isBuildFinished('feature-a'), { what: 'feature-a built' });
  await daemon!.waitFor(isBuildFinished('feature-b'), { what: 'feature-b built' });

  // Outage: the repository is unreachable for many cycles.
  const away = `${remote.bare}.away`;
  renameSync(remote.bare, away);
  const failed = (e: { msg: string; error?: unknown }) =>
    isPolled('pattern:review')(e as never) && typeof e.error === 'string';
  await daemon!.waitFor(failed, { count: 6, what: 'six failed answers' });
  renameSync(away, remote.bare);

  // Empty answer: a remote without any ref (a broken mirror), for many answers.
  git(remote.bare, ['branch', '-D', 'main', 'feature/a', 'feature/b']);
  const empty = (e: { msg: string; branches?: unknown; error?: unknown }) =>
    isPolled('pattern:review')(e as never) && e.error === null;
  const n = daemon!.count(empty);
  await daemon!.waitFor(empty, { count: n + 8, what: 'eight empty answers' });
  expect(daemon!.events.some((e) => e.msg === 'site retired')).toBe(false);
  expect(daemon!.events.some((e) => e.msg.startsWith('retiring held'))).toBe(false);
  const names = (await status(httpPort)).branches.map((b) => b.name).sort();
  expect(names).toEqual(['feature-a', 'feature-b', 'staging']);
});

test('slots: the newest branches get sites, the others wait; a pinned site is never bumped', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('feature/a');
  remote.commit('feature/b');
  remote.commit('feature/c');
  const httpPort = await freePort();
  const file = startWith(remote.url, httpPort, '    slots: 2\n');
  await daemon!.waitFor(isBuildFinished('feature-a'), { what: 'feature-a built' });
  await daemon!.waitFor(isBuildFinished('feature-b'), { what: 'feature-b built' });
  let doc = await status(httpPort);
  expect(doc.branches.map((b) => b.name)).toEqual(['staging', 'feature-a', 'feature-b']);
  expect(doc.waiting).toEqual([{ pattern: 'review', ref: 'feature/c', since: expect.any(String) }]);
  expect((await runCli(['status', '--config', file])).stdout).toMatch(
    /waiting for a slot of review: feature\/c/,
  );

  const pin = await runCli(['pin', 'feature-b', '--config', file]);
  expect(pin.code).toBe(0);
  expect((await runCli(['pin', 'staging', '--config', file])).code).toBe(2);
  // A new commit on c makes it the newest: it takes a's slot; pinned b stays.
  remote.commit('feature/c');
  const [retired] = await daemon!.waitFor(isRetired('feature-a'), { what: 'feature-a bumped' });
  expect(retired.reason).toBe('bumped');
  await daemon!.waitFor(isBuildFinished('feature-c'), { what: 'feature-c built' });
  doc = await status(httpPort);
  expect(doc.branches.map((b) => [b.name, b.pinned ?? false])).toEqual([
    ['staging', false],
    ['feature-b', true],
    ['feature-c', false],
  ]);
  expect(doc.waiting?.map((w) => w.ref)).toEqual(['feature/a']);
  const html = await (await fetch(`http://127.0.0.1:${httpPort}/`)).text();
  expect(html).toContain("'waiting for a slot: '");
});

test('the half-at-once guard holds, tells, and proceeds on retire --confirm; retiring mails and removes the dir', async () => {
  smtp = await startSmtp();
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('feature/a', 'work on a', { author: 'Dev A', email: 'dev-a@example.test' });
  remote.commit('feature/b');
  remote.commit('feature/c');
  const httpPort = await freePort();
  const file = startWith(
    remote.url,
    httpPort,
    '    customers: [osf]\n    teardown: [{ name: bye, run: "echo {branch} >> ../../teardown.log" }]\n',
    `site: { base_url: "https://review.example.test" }
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    committers: true
`,
  );
  for (const site of ['feature-a', 'feature-b', 'feature-c'])
    await daemon!.waitFor(isBuildFinished(site), { what: `${site} built` });
  const dirA = path.join(t.dir, 'review', 'feature-a');
  expect(existsSync(dirA)).toBe(true);

  git(remote.bare, ['branch', '-D', 'feature/a', 'feature/b']);
  const [held] = await daemon!.waitFor((e) => e.msg.startsWith('retiring held'), {
    what: 'the guard',
  });
  expect(held.sites).toEqual(['feature-a', 'feature-b']);
  const n = daemon!.count(answered);
  await daemon!.waitFor(answered, { count: n + 5, what: 'five more answers' });
  expect(daemon!.count((e) => e.msg.startsWith('retiring held'))).toBe(1);
  expect(daemon!.events.some((e) => e.msg === 'site retired')).toBe(false);
  expect((await status(httpPort)).branches.map((b) => b.name).sort()).toEqual([
    'feature-a',
    'feature-b',
    'feature-c',
    'staging',
  ]);
  const withoutConfirm = await runCli(['retire', '--config', file]);
  expect(withoutConfirm.code).toBe(2);
  expect(withoutConfirm.stdout).toMatch(/review: retiring feature-a feature-b is held/);

  const confirm = await runCli(['retire', '--confirm', '--config', file]);
  expect(confirm.code).toBe(0);
  await daemon!.waitFor(isRetired('feature-a'), { what: 'feature-a retired' });
  await daemon!.waitFor(isRetired('feature-b'), { what: 'feature-b retired' });
  expect(existsSync(dirA)).toBe(false);
  // The teardown steps ran in the site's directory before it was removed.
  expect(readFileSync(path.join(t.dir, 'teardown.log'), 'utf8').split('\n').sort()).toEqual([
    '',
    'feature-a',
    'feature-b',
  ]);
  expect((await status(httpPort)).branches.map((b) => b.name).sort()).toEqual([
    'feature-c',
    'staging',
  ]);

  const mails = await smtp.waitFor(3);
  const bySubject = new Map(mails.map((m) => [parseMail(m.raw).headers.subject ?? '', m]));
  expect([...bySubject.keys()].sort()).toEqual([
    '[stagepost] feature-a RETIRED',
    '[stagepost] feature-b RETIRED',
    '[stagepost] review RETIRING HELD',
  ]);
  expect(bySubject.get('[stagepost] review RETIRING HELD')!.rcpt).toEqual(['ops@example.test']);
  const a = bySubject.get('[stagepost] feature-a RETIRED')!;
  // The authors of the branch's last commits (main's first commit is one of them here).
  expect(a.rcpt.sort()).toEqual(['author@example.com', 'dev-a@example.test', 'ops@example.test']);
  const text = parseMail(a.raw).text;
  expect(text).toContain('https://review.example.test/feature-a/osf/');
  expect(text).toMatch(/its branch is gone from the remote/);
});

describeIf(hasTool('nginx'))('on_sites_changed', () => {
  test('runs when sites come and go; a real nginx -t accepts the regenerated proxy config', async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const nginx = execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
    const at = (name: string) => path.join(t.dir, name);
    const user = process.getuid?.() === 0 ? 'user root;\n' : '';
    writeFileSync(
      at('nginx.conf'),
      `${user}worker_processes 1;
pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${at('client_body')};
  proxy_temp_path ${at('proxy')};
  fastcgi_temp_path ${at('fastcgi')};
  uwsgi_temp_path ${at('uwsgi')};
  scgi_temp_path ${at('scgi')};
  include ${at('proxy.conf')};
}
`,
    );
    // The operator's line: data about the change only arrives in the environment.
    const hook = [
      `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} proxy-config --http --listen 127.0.0.1:18080 > proxy.conf`,
      `${nginx} -t -q -c ${at('nginx.conf')}`,
      'echo "added=$STAGEPOST_SITES_ADDED retired=$STAGEPOST_SITES_RETIRED" >> hook.log',
    ].join(' && ');
    const httpPort = await freePort();
    startWith(
      remote.url,
      httpPort,
      '    customers: [osf]\n',
      `site: { base_url: "https://review.example.test" }\non_sites_changed: ${JSON.stringify(hook)}\n`,
    );
    await daemon!.waitFor(isPolled('pattern:review'), { what: 'a first answer' });
    remote.commit('feature/a');
    const ran = (e: { msg: string }) => e.msg === 'on_sites_changed ran';
    const [first] = await daemon!.waitFor(ran, { what: 'the hook for feature-a' });
    expect(first.added).toEqual(['feature-a']);
    expect(readFileSync(at('proxy.conf'), 'utf8')).toContain('location /feature-a/osf/ {');
    expect(readFileSync(at('proxy.conf'), 'utf8')).toContain(
      'proxy_pass http://127.0.0.1:7101/osf/;',
    );

    // The last site of the pattern: no matching branch is held until an operator confirms.
    git(remote.bare, ['branch', '-D', 'feature/a']);
    await daemon!.waitFor((e) => e.msg.startsWith('retiring held'), { what: 'the guard' });
    expect(
      (await runCli(['retire', '--confirm', '--config', path.join(t.dir, 'ci.yaml')])).code,
    ).toBe(0);
    const [, second] = await daemon!.waitFor(ran, {
      count: 2,
      what: 'the hook for the retirement',
    });
    expect(second.retired).toEqual(['feature-a']);
    expect(readFileSync(at('proxy.conf'), 'utf8')).not.toContain('/feature-a/');
    expect(readFileSync(at('hook.log'), 'utf8')).toBe(
      'added=feature-a retired=\nadded= retired=feature-a\n',
    );
    expect(daemon!.events.some((e) => e.msg === 'on_sites_changed failed')).toBe(false);
  });
});
