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
    expect(one('WorkingDirectory')).toBe('/var/lib/stagepost');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('2 226 243');
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
    // --no-opt: a function V8 is told to optimize stays as a function it never
    // was told to (the status bits move between V8 versions; their equality does not).
    const statuses = (args: string[]) =>
      spawnSync(
        process.execPath,
        [
          '--allow-natives-syntax',
          ...args,
          '-p',
          'function f(x) { return x + 1 } function g(x) { return x + 2 } %PrepareFunctionForOptimization(f); f(1); %OptimizeFunctionOnNextCall(f); f(2); g(1); g(2); [%GetOptimizationStatus(f), %GetOptimizationStatus(g)].join(" ")',
        ],
        { encoding: 'utf8' },
      )
        .stdout.trim()
        .split(' ');
    const [optimizedFlagged, plainFlagged] = statuses(flags);
    expect(optimizedFlagged).toBe(plainFlagged);
    const [optimized, plain] = statuses([]);
    expect(optimized).not.toBe(plain);
  });

  it('lets running builds finish on stop: SIGTERM to the daemon first, a stop timeout beyond the shutdown grace', () => {
    expect(one('KillMode')).toBe('mixed');
    expect(one('KillSignal')).toBe('SIGTERM');
    const stopMs = parseDuration(one('TimeoutStopSec'))!;
    expect(stopMs).toBeGreaterThan(parseDuration(DEFAULTS.builds.shutdown_grace)! * 2);
  });

  it('passes secrets as credentials, not in the environment', () => {
    expect(service.LoadCredential).toEqual([
      'http_token:/etc/stagepost/http_token',
      'smtp_password:/etc/stagepost/smtp_password',
    ]);
    expect(service.EnvironmentFile).toBeUndefined();
  });

  it('is ready when the daemon says so', () => {
    expect(one('Type')).toBe('notify');
    // systemd-notify, a child of the daemon, sends READY=1.
    expect(one('NotifyAccess')).toBe('all');
  });

  it('hardens, and leaves builds their branch dirs, state_dir, the network and the JIT', () => {
    expect(one('ReadWritePaths').split(' ')).toEqual(['/srv/staging', '/var/lib/stagepost']);
    expect(one('StateDirectory')).toBe('stagepost');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('read-only');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('SystemCallFilter')).toBe('@system-service');
    // A blocked call fails (EPERM) instead of killing the step with SIGSYS.
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
    expect(one('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(one('UMask')).toBe('0027');
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(4096);
    // V8 writes machine code to memory, remotes are anywhere: not for this daemon.
    for (const breaking of ['MemoryDenyWriteExecute', 'PrivateNetwork', 'IPAddressDeny'])
      expect(service[breaking]).toBeUndefined();
  });

  it('says why for each directive', () => {
    const lines = UNIT.split('\n');
    const start = lines.indexOf(
      '# Hardening. `systemd-analyze security stagepost` rates it 2.1 (OK);',
    );
    expect(start).toBeGreaterThan(0);
    let commented = false;
    for (const line of lines.slice(start, lines.indexOf('[Install]'))) {
      if (line.startsWith('#')) commented = true;
      else if (line.trim() === '') commented = false;
      else expect([line, commented]).toEqual([line, true]);
    }
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

  /** The overall exposure of `systemd-analyze security --offline=true`: 0 (safe) to 10. */
  function security(text: string): number {
    const file = path.join(tmp.dir, 'stagepost.service');
    writeFileSync(file, text);
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0' },
    });
    const level = /Overall exposure level for stagepost\.service: (\d+\.\d)/.exec(r.stdout);
    if (!level) throw new Error(`no rating from systemd-analyze security:\n${r.stdout}${r.stderr}`);
    return Number(level[1]);
  }

  it('accepts the unit with no warnings', () => {
    expect(verify(UNIT)).toEqual({ status: 0, output: '' });
  });

  it('rates the unit 4.0 or better in `systemd-analyze security`', () => {
    const rating = security(UNIT);
    expect(rating).toBeLessThanOrEqual(4.0);
  });

  it('would rate the unit without its hardening above 4.0 (so the check above means something)', () => {
    const bare =
      UNIT.slice(0, UNIT.indexOf('# Hardening.')) + UNIT.slice(UNIT.indexOf('[Install]'));
    expect(security(bare)).toBeGreaterThan(4.0);
    expect(security(UNIT.replace('CapabilityBoundingSet=\n', ''))).toBeGreaterThan(security(UNIT));
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
