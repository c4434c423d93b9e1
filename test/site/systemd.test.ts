import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../../src/config/schema.js';
import { parseDuration } from '../../src/util/duration.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { unitNodeFlags } from '../helpers/unit.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const UNIT = readFileSync(path.join(REPO, 'config/stagepost.service'), 'utf8');

/** `[Section] Key=value` pairs; a key may repeat. */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      out[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    ((out[section] ??= {})[key] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

describe('config/stagepost.service', () => {
  const service = parseUnit(UNIT).Service;
  const one = (key: string) => {
    expect(service[key]).toHaveLength(1);
    return service[key][0];
  };

  it('runs the daemon as the stagepost user with the config of /etc/stagepost', () => {
    expect(one('ExecStart')).toBe(
      '/usr/bin/node --max-semi-space-size=1 --no-opt /opt/stagepost/node_modules/stagepost/bin/stagepost.js run --config /etc/stagepost/ci.yaml',
    );
    expect(one('User')).toBe('stagepost');
    expect(one('EnvironmentFile')).toBe('-/etc/stagepost/env');
    expect(one('WorkingDirectory')).toBe('/var/lib/stagepost');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('2');
  });

  it('gives node only flags this node accepts: a small young generation, no optimizing compiler', () => {
    const flags = unitNodeFlags(UNIT);
    expect(flags).toEqual(['--max-semi-space-size=1', '--no-opt']);
    // node exits 9 ("bad option") on a flag it does not know.
    // Survivors make V8 grow the young generation (to 32 MB by default).
    const grow =
      "let k = []; for (let r = 0; r < 30; r++) { for (let i = 0; i < 1e5; i++) k.push({ i }); k = k.slice(-1e5); } v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size";
    const young = (args: string[]) =>
      spawnSync(process.execPath, [...args, '-p', grow], { encoding: 'utf8', timeout: 60_000 });
    const r = young(flags);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(Number(r.stdout)).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(Number(young([]).stdout)).toBeGreaterThan(4 * 1024 * 1024);
    // --no-opt: a function V8 is told to optimize stays unoptimized (bit 16: TurboFan code).
    const turbofanned = (args: string[]) =>
      Number(
        spawnSync(
          process.execPath,
          [
            '--allow-natives-syntax',
            ...args,
            '-p',
            'function f(x) { return x + 1 } %PrepareFunctionForOptimization(f); f(1); %OptimizeFunctionOnNextCall(f); f(2); %GetOptimizationStatus(f) & 16',
          ],
          { encoding: 'utf8' },
        ).stdout,
      );
    expect(turbofanned(flags)).toBe(0);
    expect(turbofanned([])).toBe(16);
  });

  it('lets running builds finish on stop: SIGTERM to the daemon first, a stop timeout beyond the shutdown grace', () => {
    expect(one('KillMode')).toBe('mixed');
    expect(one('KillSignal')).toBe('SIGTERM');
    const stopMs = parseDuration(one('TimeoutStopSec'))!;
    expect(stopMs).toBeGreaterThan(parseDuration(DEFAULTS.builds.shutdown_grace)! * 2);
  });

  it('hardens without taking from builds what they need', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    for (const breaking of ['ProtectHome', 'PrivateNetwork', 'ProtectSystem', 'ReadOnlyPaths'])
      expect(service[breaking]).toBeUndefined();
  });
});

const needsSystemd = describeIf(hasTool('systemd-analyze'));

needsSystemd('systemd-analyze verify', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('stagepost-unit-');
  });
  afterAll(() => tmp.cleanup());

  // verify needs no running systemd: it loads the unit file, checks every key
  // and value, and checks that ExecStart's program exists. So the checkout path
  // is pointed at this repository and node at the one running the tests.
  function verify(text: string): { status: number | null; output: string } {
    const file = path.join(tmp.dir, 'stagepost.service');
    writeFileSync(
      file,
      text.replaceAll('/opt/stagepost', REPO).replace('/usr/bin/node ', `${process.execPath} `),
    );
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
  }

  it('accepts the unit with no warnings', () => {
    expect(verify(UNIT)).toEqual({ status: 0, output: '' });
  });

  it('would notice a mistake in it (so the check above means something)', () => {
    const typo = verify(UNIT.replace('KillMode=mixed', 'KillMode=mixed\nTimeoutStopSecs=90s'));
    expect(typo.output).toContain("Unknown key 'TimeoutStopSecs'");
    const missing = verify(
      UNIT.replace('bin/stagepost.js', 'bin/no-such-file.js').replace(
        /^ExecStart=\S+/m,
        'ExecStart=/nonexistent/node',
      ),
    );
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('/nonexistent/node is not executable');
  });
});
