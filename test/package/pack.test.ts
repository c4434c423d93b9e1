/**
 * The package as an operator installs it: `npm pack` of this checkout's dist/
 * (built by `npm run build`; `npm test` builds first), `npm install <tarball>`
 * into an empty folder, and the installed `stagepost` run with a third-party
 * notifier plugin that imports `stagepost/plugin-api`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, type RunResult } from '../../src/util/exec.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const NPM_TIMEOUT_MS = 180_000;
const version = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

// A notifier as a third party writes it: plain JavaScript, the public entry only.
const PLUGIN = `import { writeFileSync } from 'node:fs';
import { EVENT_NAMES, oneLine } from 'stagepost/plugin-api';

export default function thirdParty(ctx) {
  writeFileSync(process.env.PLUGIN_SEEN, JSON.stringify({
    stateDir: ctx.stateDir,
    run: typeof ctx.run,
    sshBase: ctx.sshWords().base,
    events: EVENT_NAMES,
    oneLine: oneLine('a\\nb'),
  }));
  return {
    kind: 'notifier',
    name: 'third-party',
    validate: (options) =>
      typeof options.channel === 'string' ? [] : [{ path: ['channel'], message: 'name a channel' }],
    create: () => ({ prepare: (n) => ({ type: n.type }), deliver: async () => undefined }),
  };
}
`;

function ok(r: RunResult): RunResult {
  if (r.exitCode !== 0)
    throw new Error(
      `${r.command} exited ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}:\n${r.stdout}\n${r.stderr}`,
    );
  return r;
}

describe('the npm package', () => {
  const t = tempDir('stagepost-pack-');
  const site = path.join(t.dir, 'site');
  const stateDir = path.join(t.dir, 'state');
  const seen = path.join(t.dir, 'seen.json');
  let files: string[] = [];
  afterAll(() => t.cleanup());

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')))
      throw new Error('dist/ is missing: run `npm run build` before this test');
    // --ignore-scripts: pack the dist/ this run tests, without rebuilding it under other tests.
    const pack = ok(
      await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', t.dir], {
        cwd: ROOT,
        timeoutMs: NPM_TIMEOUT_MS,
      }),
    );
    const [packed] = JSON.parse(pack.stdout) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    files = packed.files.map((f) => f.path);
    mkdirSync(site);
    writeFileSync(path.join(site, 'package.json'), '{ "name": "site", "private": true }\n');
    ok(
      await run(
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          path.join(t.dir, packed.filename),
        ],
        { cwd: site, timeoutMs: NPM_TIMEOUT_MS },
      ),
    );
  }, 2 * NPM_TIMEOUT_MS);

  const stagepost = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(path.join(site, 'node_modules', '.bin', 'stagepost'), args, {
      cwd: site,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      timeoutMs: 30_000,
    });

  it('ships the compiled code with its types, and neither sources, tests nor bench', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/stagepost.js',
        'dist/src/cli/main.js',
        'dist/src/plugin-api.js',
        'dist/src/plugin-api.d.ts',
        'dist/plugins/git/index.js',
      ]),
    );
    expect(files.filter((f) => /^(src|test|bench|scripts|plugins)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('installs without tsx, and `stagepost --version` prints the package version', async () => {
    expect(existsSync(path.join(site, 'node_modules', 'tsx'))).toBe(false);
    const r = ok(await stagepost(['--version']));
    expect(r.stdout.trim()).toBe(version);
  });

  it('`stagepost check` passes the example ci.yaml with a third-party notifier that imports stagepost/plugin-api', async () => {
    const example = readFileSync(path.join(ROOT, 'ci.yaml'), 'utf8');
    expect(example).toMatch(/^state_dir: .*$/m);
    expect(example).toMatch(/^notify:\n/m);
    writeFileSync(path.join(site, 'plugin.js'), PLUGIN);
    const config = path.join(site, 'ci.yaml');
    writeFileSync(
      config,
      example
        .replace(/^state_dir: .*$/m, `state_dir: ${stateDir}`)
        .replace(/^notify:\n/m, 'notify:\n  - use: ./plugin.js\n    channel: ops\n'),
    );
    const env = {
      STAGEPOST_TOKEN: 'token-for-the-test',
      SMTP_PASSWORD: 'smtp-for-the-test',
      PLUGIN_SEEN: seen,
    };
    const r = ok(await stagepost(['check', '--config', config], env));
    expect(r.stdout).toContain(`${config}: valid`);
    // The plugin got the public entry's helpers and the context the daemon gives.
    expect(JSON.parse(readFileSync(seen, 'utf8'))).toEqual({
      stateDir: path.join(stateDir, 'plugins'),
      run: 'function',
      sshBase: ['ssh', '-o', 'BatchMode=yes'],
      events: expect.arrayContaining(['failure', 'job-failure']) as unknown,
      oneLine: 'a b',
    });

    // Its own validation is run and reported at the entry's line.
    writeFileSync(config, readFileSync(config, 'utf8').replace('    channel: ops\n', ''));
    const bad = await stagepost(['check', '--config', config], env);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/ci\.yaml:\d+: notify \(.*plugin\.js\): channel: name a channel/);
  });
});

describe('bin/stagepost.js', () => {
  it('runs dist/ only: without it, it says to run `npm run build`', async () => {
    const t = tempDir('stagepost-nodist-');
    try {
      mkdirSync(path.join(t.dir, 'bin'));
      copyFileSync(path.join(ROOT, 'bin', 'stagepost.js'), path.join(t.dir, 'bin', 'stagepost.js'));
      writeFileSync(path.join(t.dir, 'package.json'), '{ "type": "module" }\n');
      const r = await run(
        process.execPath,
        [path.join(t.dir, 'bin', 'stagepost.js'), '--version'],
        {
          timeoutMs: 30_000,
        },
      );
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('npm run build');
      expect(r.stderr).toContain(path.join(t.dir, 'dist', 'src', 'cli', 'main.js'));
    } finally {
      t.cleanup();
    }
  });
});
