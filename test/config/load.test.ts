/**
 * What loadConfig returns: defaults, per-branch overrides, `${VAR}`
 * substitution and its secrets, paths, and the example configs of the repo.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig, resolveConfigPath } from '../../src/config/load.js';
import { StagepostError } from '../../src/errors.js';
import { redactor } from '../../src/util/redact.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, FILE } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('defaults of SPEC', () => {
  const c = parseConfig(BASE, FILE, {});
  expect(c.file).toBe(FILE);
  expect(c.dir).toBe('/srv/stagepost');
  expect(c.stateDir).toBe('/srv/stagepost/.stagepost');
  expect(c.poll).toEqual({ intervalMs: 60_000, timeoutMs: 30_000, quietMs: 0 });
  expect(c.concurrency).toBe(1);
  expect(c.shutdownGraceMs).toBe(30_000);
  expect(c.steps).toEqual([{ name: 'build', run: 'make', timeoutMs: 3_600_000 }]);
  expect(c.create).toEqual([]);
  expect(c.health).toBeUndefined();
  expect(c.http).toBeUndefined();
  expect(c.notify).toEqual([]);
  expect(c.jobs).toEqual([]);
  const b = c.branches.find((x) => x.name === 'branch1')!;
  expect(b).toMatchObject({
    dir: '/srv/stagepost/sites/branch1',
    port: 6544,
    customers: ['osf'],
    mailin: [],
    mailout: false,
    stepTimeoutMs: 3_600_000,
    keep: 50,
    poll: c.poll,
    line: 12,
  });
  expect(b.smtpPort).toBeUndefined();
  expect(b.sources).toEqual([
    {
      name: 'app',
      vcs: 'git',
      url: 'https://git.example.com/app.git',
      ref: 'feature',
      path: 'src/app',
      options: {},
      line: 16,
    },
  ]);
});

test('a branch overrides poll, builds, steps, create, health and adds notifiers; steps take its step_timeout', () => {
  const text = `version: 1
state_dir: /var/lib/stagepost
poll: { interval: 2m, timeout: 10, quiet: 500ms }
builds: { concurrency: 3, step_timeout: 20m, keep: 10, shutdown_grace: 1m }
steps:
  - { name: buildout, run: bin/buildout, timeout: 45m }
  - { name: restart, run: bin/restart }
create:
  - { name: bootstrap, run: python bootstrap.py }
health: { url: "http://127.0.0.1:{port}/{customer}/", timeout: 5s }
notify:
  - { use: log }
branches:
  plain:
    dir: /srv/plain
    port: 7001
    sources: [{ name: app, vcs: svn, url: "file:///repo/trunk" }]
  custom:
    dir: /srv/custom
    port: 7002
    sources: [{ name: app, vcs: svn, url: "file:///repo/branches/x" }]
    poll: { interval: 10s }
    builds: { step_timeout: 2h, keep: 3 }
    health: { expect: [200, "301-302"] }
    notify:
      - { use: webhook, url: "https://hooks.example.com/x", on: [success] }
  other:
    dir: /srv/other
    sources: [{ name: app, vcs: svn, url: "file:///repo/branches/y" }]
    steps: [{ name: make, run: make }]
    create: []
    health: false
jobs:
  sync:
    schedule: "0 2 * * *"
    timezone: Europe/Berlin
    branches: all
    run: bin/sync
`;
  const c = parseConfig(text, FILE, {});
  expect(c.stateDir).toBe('/var/lib/stagepost');
  expect(c.poll).toEqual({ intervalMs: 120_000, timeoutMs: 10_000, quietMs: 500 });
  expect([c.concurrency, c.shutdownGraceMs]).toEqual([3, 60_000]);
  const [plain, custom, other] = c.branches;
  expect(plain.poll).toEqual(c.poll);
  expect(plain.steps.map((s) => s.timeoutMs)).toEqual([45 * 60_000, 20 * 60_000]);
  expect(plain.create).toEqual([
    { name: 'bootstrap', run: 'python bootstrap.py', timeoutMs: 20 * 60_000 },
  ]);
  expect(plain.health).toEqual({
    url: 'http://127.0.0.1:{port}/{customer}/',
    expect: [{ min: 200, max: 399 }],
    timeoutMs: 5000,
  });
  expect(plain.notify.map((n) => n.use)).toEqual(['log']);
  expect(plain.sources[0].path).toBe('src/app');

  expect(custom.poll).toEqual({ intervalMs: 10_000, timeoutMs: 10_000, quietMs: 500 });
  expect([custom.stepTimeoutMs, custom.keep]).toEqual([7_200_000, 3]);
  expect(custom.steps.map((s) => s.timeoutMs)).toEqual([45 * 60_000, 7_200_000]);
  expect(custom.health).toEqual({
    url: 'http://127.0.0.1:{port}/{customer}/',
    expect: [
      { min: 200, max: 200 },
      { min: 301, max: 302 },
    ],
    timeoutMs: 5000,
  });
  expect(custom.notify.map((n) => [n.use, n.on])).toEqual([
    ['log', ['failure', 'fixed', 'ref-missing', 'ref-back', 'slow', 'retired', 'retire-held']],
    ['webhook', ['success']],
  ]);
  expect(custom.notify[1].options).toEqual({ url: 'https://hooks.example.com/x' });

  expect(other.steps).toEqual([{ name: 'make', run: 'make', timeoutMs: 20 * 60_000 }]);
  expect(other.create).toEqual([]);
  expect(other.health).toBeUndefined();

  expect(c.jobs).toEqual([
    {
      name: 'sync',
      schedule: '0 2 * * *',
      timezone: 'Europe/Berlin',
      branches: ['plain', 'custom', 'other'],
      run: 'bin/sync',
      timeoutMs: 3_600_000,
      notifyOn: ['job-failure'],
      line: 34,
    },
  ]);
});

test('${VAR} is substituted everywhere but in run, and every value becomes a secret', () => {
  const text = `version: 1
steps:
  - { name: deploy, run: 'echo \${TOKEN} \${MARK:-x}' }
site: { smtp_relay: "smtp://relay:\${RELAY_PASSWORD}@mail:25" }
notify:
  - use: email
    transport: "smtps://u:\${SMTP_PASSWORD}@host:465"
    on: [failure]
http: { listen: 9000, token: "\${STAGEPOST_TOKEN}" }
branches:
  b:
    dir: ./b
    sources: [{ name: app, vcs: git, url: "https://\${GIT_TOKEN}@git.example.com/x.git", ref: main }]
    steps: [{ name: s, run: 'curl -H "\${GIT_TOKEN}"' }]
jobs:
  j: { schedule: "* * * * *", branches: [b], run: 'sync \${TOKEN}' }
`;
  const env = {
    TOKEN: 'not-used',
    RELAY_PASSWORD: 'relay-pass-1',
    SMTP_PASSWORD: 'smtp-pass-22',
    STAGEPOST_TOKEN: 'http-token-333',
    GIT_TOKEN: 'git-token-4444',
  };
  const c = parseConfig(text, FILE, env);
  expect(c.steps[0].run).toBe('echo ${TOKEN} ${MARK:-x}');
  expect(c.branches[0].steps[0].run).toBe('curl -H "${GIT_TOKEN}"');
  expect(c.jobs[0].run).toBe('sync ${TOKEN}');
  expect(c.site.smtpRelay).toBe('smtp://relay:relay-pass-1@mail:25');
  expect(c.notify[0].options.transport).toBe('smtps://u:smtp-pass-22@host:465');
  expect(c.http!.token).toBe('http-token-333');
  expect(c.branches[0].sources[0].url).toBe('https://git-token-4444@git.example.com/x.git');
  expect(redactor.redact('a http-token-333 b git-token-4444 c relay-pass-1 smtp-pass-22')).toBe(
    'a [secure] b [secure] c [secure] [secure]',
  );
});

test('http.listen: PORT alone is loopback; ADDR:PORT; public_url defaults to http://host:port', () => {
  const http = (h: string) => parseConfig(`version: 1\nhttp: ${h}\n`, FILE, {}).http;
  expect(http('{ listen: 8750 }')).toEqual({
    host: '127.0.0.1',
    port: 8750,
    publicUrl: 'http://127.0.0.1:8750',
    publicLogs: true,
    publicUrlSet: false,
  });
  expect(http('{ listen: "8751" }')).toMatchObject({ host: '127.0.0.1', port: 8751 });
  expect(http('{ listen: "0.0.0.0:80", public_url: "https://ci.example.com/" }')).toEqual({
    host: '0.0.0.0',
    port: 80,
    publicUrl: 'https://ci.example.com',
    publicLogs: true,
    publicUrlSet: true,
  });
  expect(http('{ listen: "[::1]:8750" }')).toMatchObject({
    host: '::1',
    port: 8750,
    publicUrl: 'http://[::1]:8750',
  });
  expect(http('{}')).toMatchObject({ host: '127.0.0.1', port: 8750 });
});

test('relative paths are relative to ci.yaml; a plugin path too; notifier keys are stable and differ by options', () => {
  const text = `version: 1
state_dir: state
site: { certificate: ssl/site.pem, certificate_key: ../keys/site.key }
notify:
  - { use: ./plugins/irc.js, channel: "#karl" }
  - { use: stagepost-irc, channel: "#karl" }
  - { use: stagepost-irc, channel: "#other" }
branches:
  b:
    dir: sites/b
    sources: [{ name: app, vcs: ./vcs/hg.js, url: "https://hg.example.com/x", branch: default }]
`;
  const c = parseConfig(text, FILE, {});
  expect(c.stateDir).toBe('/srv/stagepost/state');
  expect(c.site).toEqual({
    certificate: '/srv/stagepost/ssl/site.pem',
    certificateKey: '/srv/keys/site.key',
  });
  expect(c.notify.map((n) => n.use)).toEqual([
    '/srv/stagepost/plugins/irc.js',
    'stagepost-irc',
    'stagepost-irc',
  ]);
  expect(c.notify.map((n) => n.line)).toEqual([5, 6, 7]);
  expect(c.notify.every((n) => n.file === FILE && /^[0-9a-f]{12}$/.test(n.key))).toBe(true);
  expect(new Set(c.notify.map((n) => n.key)).size).toBe(3);
  const again = parseConfig(
    text.replace(
      'channel: "#karl" }\n  - { use: stagepost-irc',
      'channel: "#karl" }   # same\n  - { use: stagepost-irc',
    ),
    FILE,
    {},
  );
  expect(again.notify.map((n) => n.key)).toEqual(c.notify.map((n) => n.key));
  expect(c.branches[0].sources[0]).toMatchObject({
    vcs: '/srv/stagepost/vcs/hg.js',
    options: { branch: 'default' },
  });
});

test('resolveConfigPath: --config, else $STAGEPOST_CONFIG, else ./ci.yaml; relative to cwd', () => {
  expect(resolveConfigPath('etc/ci.yaml', { STAGEPOST_CONFIG: '/x/ci.yaml' }, '/home/op')).toBe(
    '/home/op/etc/ci.yaml',
  );
  expect(resolveConfigPath(undefined, { STAGEPOST_CONFIG: '/x/ci.yaml' }, '/home/op')).toBe(
    '/x/ci.yaml',
  );
  expect(resolveConfigPath(undefined, {}, '/home/op')).toBe('/home/op/ci.yaml');
});

test('a missing file is ECONFIGMISSING naming the path and --config', async () => {
  const t = tempDir();
  try {
    const missing = path.join(t.dir, 'nope.yaml');
    const err = await loadConfig(missing, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StagepostError);
    expect((err as StagepostError).code).toBe('ECONFIGMISSING');
    expect((err as StagepostError).message).toContain(missing);
    expect((err as StagepostError).message).toContain('--config');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      'version: 1\nbranches:\n  a: { dir: a, sources: [{ name: s, vcs: git, url: u }] }\n',
    );
    const bad = await loadConfig(file, {}).catch((e: unknown) => e);
    expect((bad as StagepostError).code).toBe('ECONFIG');
    expect((bad as StagepostError).message).toMatch(
      /:3: branches\.a\.sources\[0\]\.ref: git sources need a ref/,
    );
  } finally {
    t.cleanup();
  }
});

test('the top-level ci.yaml and config/minimal.yaml load', async () => {
  const env = { STAGEPOST_TOKEN: 'token-of-test', SMTP_PASSWORD: 'password-of-test' };
  const c = await loadConfig(path.join(ROOT, 'ci.yaml'), env);
  expect(c.branches.map((b) => b.name)).toEqual(['staging', 'branch1', 'branch2', 'branch3']);
  expect(new Set(c.branches.flatMap((b) => b.sources.map((s) => s.vcs)))).toEqual(
    new Set(['git', 'svn']),
  );
  const branch1 = c.branches.find((b) => b.name === 'branch1')!;
  expect(branch1).toMatchObject({
    customers: ['osf', 'anothercustomer'],
    mailin: ['osf'],
    smtpPort: 2526,
  });
  expect(c.jobs[0]).toMatchObject({
    name: 'nightly-sync',
    schedule: '0 2 * * *',
    timeoutMs: 16 * 3_600_000,
    branches: ['staging', 'branch1'],
  });
  expect(c.notify[0]).toMatchObject({ use: 'email', options: { committers: true } });
  expect(c.http!.token).toBe('token-of-test');
  expect(redactor.redact('password-of-test token-of-test')).toBe('[secure] [secure]');
  const err = await loadConfig(path.join(ROOT, 'ci.yaml'), {}).catch((e: unknown) => e);
  expect((err as StagepostError).message).toMatch(
    /\$\{SMTP_PASSWORD\} is not set[^]*\$\{STAGEPOST_TOKEN\} is not set/,
  );

  const minimal = await loadConfig(path.join(ROOT, 'config/minimal.yaml'), {});
  expect(minimal.branches).toHaveLength(1);
});
