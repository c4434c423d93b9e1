/**
 * Issue 16.4 / 15.4: a step's environment is an allow-list. A step that
 * dumps `env` and its parent's /proc/$PPID/environ (the daemon, same user)
 * finds none of the secrets ci.yaml's `${…}` read, but does find
 * STAGEPOST_PORT and what ci.yaml's `env` passes or sets; a reload still
 * substitutes the forgotten secrets.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  t.cleanup();
});

const SECRETS = {
  SMTP_PASSWORD: 'smtp-Pa55-word-7f3a',
  HOOK_TOKEN: 'hook-T0ken-91c2',
  STAGEPOST_TOKEN: 'http-T0ken-5d8e-abcdef',
};

test('a step sees the allow-list, ci.yaml env and STAGEPOST_PORT, never a secret', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const port = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
http:
  listen: ${port}
  token: \${STAGEPOST_TOKEN}
notify:
  - use: email
    transport: "smtp://deploy:\${SMTP_PASSWORD}@127.0.0.1:9"
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    on: [job-failure]
  - { use: webhook, url: "http://127.0.0.1:9/hook/\${HOOK_TOKEN}", on: [job-failure] }
env:
  pass: [PASSED_ON, NOT_SET_ANYWHERE]
  set: { SET_HERE: from-ci-yaml }
steps:
  - name: dump
    run: 'env > env.txt; tr "\\\\0" "\\\\n" < /proc/$PPID/environ > parent.txt; echo $PPID > ppid.txt'
branches:
${gitBranchYaml('staging', remote.url, 'main', '    port: 6543\n    env: { set: { SET_HERE: branch-wins } }\n')}`,
  );
  daemon = new DaemonProcess(file, {
    ...SECRETS,
    PASSED_ON: 'yes',
    UNLISTED_VAR: 'not-for-steps',
    LC_TIME: 'C',
  });
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });
  const site = path.join(t.dir, 'sites/staging');
  const env = readFileSync(path.join(site, 'env.txt'), 'utf8');
  const parent = readFileSync(path.join(site, 'parent.txt'), 'utf8');
  expect(Number(readFileSync(path.join(site, 'ppid.txt'), 'utf8'))).toBe(daemon.child.pid);

  for (const [name, value] of Object.entries(SECRETS)) {
    expect(env).not.toContain(value);
    expect(parent).not.toContain(value);
    expect(parent).not.toMatch(new RegExp(`^${name}=`, 'm'));
  }
  // The parent's block was really read: what was not a secret is still there.
  expect(parent).toMatch(/^UNLISTED_VAR=not-for-steps$/m);

  const names = env
    .split('\n')
    .map((l) => l.split('=')[0])
    .filter(Boolean)
    .sort();
  expect(env).toMatch(/^STAGEPOST_PORT=6543$/m);
  expect(env).toMatch(/^PASSED_ON=yes$/m);
  expect(env).toMatch(/^SET_HERE=branch-wins$/m);
  expect(env).toMatch(/^LC_TIME=C$/m);
  expect(env).not.toContain('UNLISTED_VAR');
  expect(env).not.toContain('NOT_SET_ANYWHERE');
  // sh adds PWD, SHLVL and _ of its own.
  const expected = /^(PATH|HOME|LANG|LC_\w+|TZ|PWD|SHLVL|_|PASSED_ON|SET_HERE|STAGEPOST_\w+)$/;
  expect(names.filter((n) => !expected.test(n))).toEqual([]);

  // The values were forgotten by the process, not by ci.yaml: a reload substitutes them again.
  appendFileSync(file, '# an edit\n');
  await daemon.waitFor((e) => e.msg === 'ci.yaml reloaded', { what: 'the reload' });
  expect(daemon.count((e) => e.msg === 'ci.yaml edit rejected; keeping the last good config')).toBe(
    0,
  );
  expect(
    daemon.events.find((e) => e.msg === 'secrets dropped from the environment')?.names,
  ).toEqual(expect.arrayContaining(Object.keys(SECRETS)));
});

test('steps run by `stagepost update` cannot read the secrets from the CLI either', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
notify:
  - { use: webhook, url: "http://127.0.0.1:9/hook/\${HOOK_TOKEN}", on: [job-failure] }
steps:
  - name: dump
    run: 'env > env.txt; tr "\\\\0" "\\\\n" < /proc/$PPID/environ > parent.txt'
branches:
${gitBranchYaml('staging', remote.url, 'main', '    port: 6543\n')}`,
  );
  const result = await runCli(['update', 'staging', '--config', file], {
    env: { HOOK_TOKEN: SECRETS.HOOK_TOKEN, UNLISTED_VAR: 'not-for-steps' },
  });
  expect([result.code, result.stderr]).toEqual([0, expect.anything()]);
  const site = path.join(t.dir, 'sites/staging');
  const parent = readFileSync(path.join(site, 'parent.txt'), 'utf8');
  expect(parent).toMatch(/^UNLISTED_VAR=not-for-steps$/m);
  expect(parent).not.toContain(SECRETS.HOOK_TOKEN);
  expect(readFileSync(path.join(site, 'env.txt'), 'utf8')).toMatch(/^STAGEPOST_PORT=6543$/m);
});
