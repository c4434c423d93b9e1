import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { groupAlive } from '../../src/util/exec.js';
import {
  queryServerPid,
  runQuery,
  Spawner,
  stopQueryServer,
  useQueryServer,
} from '../../src/util/spawner.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool, processAlive } from '../helpers/tools.js';

// Skips loudly without perl, except under CI=true, where it fails.
const hasPerl = hasTool('perl');
const node = process.execPath;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describeIf(hasPerl)('Spawner (perl fork server)', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());
  beforeAll(() => useQueryServer(true));
  afterAll(() => stopQueryServer());

  test('arguments reach the command literally, with no shell in between', async () => {
    const pwned = path.join(t.dir, 'pwned');
    const args = [
      'a b',
      `"quoted" 'single'`,
      'line\nbreak',
      `$(touch ${pwned})`,
      '`id`; *',
      '',
      'ünïcødé ✓ 😀',
      '-x',
      '',
    ];
    const result = await runQuery(node, [
      '-e',
      'process.stdout.write(JSON.stringify(process.argv.slice(1)))',
      ...args,
    ]);
    expect(result.spawnError).toBeUndefined();
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(args);
    expect(existsSync(pwned)).toBe(false);
    // Through the server, not the fallback to spawn().
    expect(queryServerPid()).toBeDefined();
  });

  test('printf through PATH lookup sees each argument as one', async () => {
    const result = await runQuery('printf', ['[%s]\n', 'a b', '', '$HOME']);
    expect(result.stdout).toBe('[a b]\n[]\n[$HOME]\n');
    expect(result.command).toBe('printf [%s]\n a b  $HOME');
  });

  test('the child gets exactly the environment passed, and the cwd', async () => {
    const env = { ONLY: 'this', EMPTY: '', SPACES: 'a b=c\nd', PATH: '/usr/bin:/bin' };
    const result = await runQuery(
      node,
      ['-e', 'process.stdout.write(JSON.stringify({ env: process.env, cwd: process.cwd() }))'],
      { env, cwd: t.dir },
    );
    expect(JSON.parse(result.stdout)).toEqual({ env, cwd: t.dir });
    const relative = await runQuery('pwd', [], { cwd: path.relative(process.cwd(), t.dir) });
    expect(relative.stdout).toBe(`${t.dir}\n`);
  });

  test('the environment defaults to process.env', async () => {
    process.env.STAGEPOST_SPAWNER_TEST = 'from parent';
    try {
      const result = await runQuery('sh', ['-c', 'printf %s "$STAGEPOST_SPAWNER_TEST"']);
      expect(result.stdout).toBe('from parent');
    } finally {
      delete process.env.STAGEPOST_SPAWNER_TEST;
    }
  });

  test('exit codes, death by a signal, stdout and stderr apart', async () => {
    const exited = await runQuery('sh', ['-c', 'echo out; echo err >&2; exit 7']);
    expect(exited).toMatchObject({
      exitCode: 7,
      signal: null,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
      aborted: false,
    });
    expect(exited.spawnError).toBeUndefined();
    const killed = await runQuery('sh', ['-c', 'kill -USR1 $$']);
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGUSR1' });
  });

  test('the command leads its own session and process group, with no stdin', async () => {
    const result = await runQuery('sh', ['-c', 'cat; cut -d" " -f5,6 /proc/$$/stat; echo $$']);
    const [groups, pid] = result.stdout.trim().split('\n');
    expect(groups).toBe(`${pid} ${pid}`);
  });

  test('each request gets its own environment, in any mix, past the 64 the server keeps', async () => {
    const envs = Array.from({ length: 70 }, (_, i) => ({
      PATH: '/usr/bin:/bin',
      WHICH: `env ${i % 70}`,
      ...(i % 2 ? { ODD: 'yes' } : {}),
    }));
    // Runs of the same environment and alternations, all in one tick, twice over.
    const order = [
      0,
      0,
      0,
      1,
      0,
      1,
      1,
      2,
      2,
      0,
      ...Array.from({ length: 70 }, (_, i) => i),
      3,
      3,
      0,
      0,
      ...Array.from({ length: 70 }, (_, i) => 69 - i),
      5,
      5,
    ];
    const print = [node, ['-e', 'process.stdout.write(JSON.stringify(process.env))']] as const;
    const results = await Promise.all(
      order.map((i) => runQuery(print[0], print[1], { env: envs[i] })),
    );
    results.forEach((r, n) => expect(JSON.parse(r.stdout)).toEqual(envs[order[n]]));
    // And one at a time, where the server takes an environment on itself.
    for (const i of [7, 7, 7, 8, 7, 7])
      expect(JSON.parse((await runQuery(print[0], print[1], { env: envs[i] })).stdout)).toEqual(
        envs[i],
      );
  });

  test("the server has a process group of its own (Ctrl-C goes to the daemon's), and its children ignore no signal", async () => {
    const result = await runQuery('sh', ['-c', 'grep "^SigIgn" /proc/$$/status']);
    expect(result.stdout).toBe('SigIgn:\t0000000000000000\n');
    const pid = queryServerPid()!;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    expect(pgrp).toBe(pid);
  });

  test('requests from timers due together leave in one write to the server', async () => {
    const server = Spawner.start();
    try {
      // Count the writes of the pipe to the server (not of the write() calls, which cork gathers).
      const stdin = (
        server as unknown as {
          child: {
            stdin: { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
          };
        }
      ).child.stdin;
      let writes = 0;
      for (const method of ['_write', '_writev'] as const) {
        const original = stdin[method].bind(stdin);
        stdin[method] = (...a: unknown[]) => {
          writes++;
          original(...a);
        };
      }
      const env = Object.freeze({ PATH: '/usr/bin:/bin' });
      const cycle = () =>
        Promise.all(
          Array.from(
            { length: 10 },
            () =>
              new Promise<void>((resolve) =>
                setTimeout(() => void server.run('true', [], { env }).then(() => resolve()), 5),
              ),
          ),
        );
      for (let i = 0; i < 5; i++) await cycle();
      expect(writes).toBeLessThanOrEqual(7);
    } finally {
      await server.close();
    }
  });

  test("input reaches the command's stdin byte for byte, in requests mixed with others", async () => {
    const inputs = [
      '0014command=ls-refs\n0001',
      'ünïcødé ✓\0 nul and\nlines',
      'x'.repeat(16 * 1024 - 3) + '€',
    ];
    const results = await Promise.all([
      ...inputs.map((input) =>
        runQuery(node, ['-e', 'process.stdin.pipe(process.stdout)'], { input }),
      ),
      runQuery('sh', ['-c', 'cat; echo done']),
    ]);
    expect(results.map((r) => r.stdout)).toEqual([...inputs, 'done\n']);
    expect(queryServerPid()).toBeDefined();
  });

  test('input over 16 KiB is refused by the server and taken by runQuery the plain way', async () => {
    const server = Spawner.start();
    try {
      await expect(server.run('cat', [], { input: 'x'.repeat(16 * 1024 + 1) })).rejects.toThrow(
        /input of 16385 bytes is over 16384/,
      );
    } finally {
      await server.close();
    }
    const big = 'y'.repeat(100_000);
    const result = await runQuery('sh', ['-c', 'cat; echo "$PPID"'], { input: big });
    const [out, parent] = [
      result.stdout.slice(0, big.length),
      Number(result.stdout.slice(big.length)),
    ];
    expect(out).toBe(big);
    // Through exec.ts: started by this process, not by perl.
    expect(parent).toBe(process.pid);
  });

  test('1 MB of output arrives intact; maxBuffer keeps the tail', async () => {
    const script =
      'let s = ""; for (let i = 0; s.length < 1 << 20; i++) s += i + ","; process.stdout.write(s); process.stderr.write("é".repeat(600))';
    let expected = '';
    for (let i = 0; expected.length < 1 << 20; i++) expected += i + ',';
    const full = await runQuery(node, ['-e', script]);
    expect(full.stdout.length).toBe(expected.length);
    expect(full.stdout === expected).toBe(true);
    expect(full.stderr).toBe('é'.repeat(600));
    const tail = await runQuery(node, ['-e', script], { maxBuffer: 1001 });
    expect(tail.stdout).toBe(expected.slice(-1001));
    // A cut through a two-byte character drops it rather than garbling it.
    expect(tail.stderr).toBe('é'.repeat(500));
  });

  test('a missing command or cwd is a spawnError, like spawn()', async () => {
    const missing = await runQuery('stagepost-no-such-command', ['x']);
    expect(missing.exitCode).toBeNull();
    expect(missing.signal).toBeNull();
    expect((missing.spawnError as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(missing.spawnError!.message).toBe('spawn stagepost-no-such-command ENOENT');
    const noCwd = await runQuery('true', [], { cwd: path.join(t.dir, 'gone') });
    expect((noCwd.spawnError as NodeJS.ErrnoException).code).toBe('ENOENT');
    const notExecutable = await runQuery(path.join(t.dir), []);
    expect((notExecutable.spawnError as NodeJS.ErrnoException).code).toBe('EACCES');
    expect((await runQuery('true', [])).exitCode).toBe(0);
  });

  test('a NUL byte in an argument is refused, as spawn() refuses it', async () => {
    await expect(runQuery('echo', ['a\0b'])).rejects.toThrow(/NUL/);
    expect((await runQuery('echo', ['ok'])).stdout).toBe('ok\n');
  });

  test('a timeout ends the whole group, grandchild included', async () => {
    const pidFile = path.join(t.dir, 'pids');
    const result = await runQuery('sh', ['-c', 'sleep 30 & echo $$ $! > "$0"; sleep 30', pidFile], {
      timeoutMs: 300,
      killGraceMs: 500,
    });
    expect(result.timedOut).toBe(true);
    expect(result.aborted).toBe(false);
    expect(result.signal).toBe('SIGTERM');
    expect(result.durationMs).toBeLessThan(3000);
    const [leader, grandchild] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(processAlive(grandchild)).toBe(false);
    expect(groupAlive(leader)).toBe(false);
  });

  test('a command that ignores TERM is killed after killGraceMs', async () => {
    const result = await runQuery('sh', ['-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], {
      timeoutMs: 200,
      killGraceMs: 300,
    });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
  });

  test('a timeout shorter than the start still ends the command', async () => {
    const result = await runQuery('sleep', ['30'], { timeoutMs: 1 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGTERM');
  });

  test('an abort ends the group and is recorded as aborted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const result = await runQuery('sleep', ['30'], { signal: controller.signal });
    expect(result).toMatchObject({ aborted: true, timedOut: false, signal: 'SIGTERM' });
    const early = await runQuery('sleep', ['30'], { signal: AbortSignal.abort() });
    expect(early).toMatchObject({ aborted: true, signal: 'SIGTERM' });
  });

  test('50 requests in flight at once all come back right', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        runQuery('sh', [
          '-c',
          'sleep 0.$(($1 % 3)); echo "out $1"; echo "err $1" >&2; exit $(($1 % 7))',
          'sh',
          String(i),
        ]),
      ),
    );
    expect(queryServerPid()).toBeDefined();
    results.forEach((r, i) => {
      expect(r).toMatchObject({
        exitCode: i % 7,
        signal: null,
        stdout: `out ${i}\n`,
        stderr: `err ${i}\n`,
      });
    });
  });

  test('a grandchild holding the pipes does not hold the result past ~1 s', async () => {
    const result = await runQuery('sh', ['-c', 'sleep 20 & echo $!']);
    const grandchild = Number(result.stdout.trim());
    try {
      expect(result.exitCode).toBe(0);
      expect(result.durationMs).toBeGreaterThanOrEqual(900);
      expect(result.durationMs).toBeLessThan(2500);
    } finally {
      process.kill(grandchild, 'SIGKILL');
    }
  });

  test('a server killed mid-request fails that request; the next query gets a new server', async () => {
    await runQuery('true', []);
    const first = queryServerPid()!;
    const pidFile = path.join(t.dir, 'pid');
    const pending = runQuery('sh', ['-c', 'echo $$ > "$0"; exec sleep 30', pidFile]);
    await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
    process.kill(first, 'SIGKILL');
    const failed = await pending;
    expect(failed.spawnError?.message).toMatch(/query server exited/);
    expect(failed.exitCode).toBeNull();
    // Its orphaned command does not live on.
    await until(() => !processAlive(Number(readFileSync(pidFile, 'utf8'))));
    const next = await runQuery('echo', ['again']);
    expect(next.stdout).toBe('again\n');
    expect(queryServerPid()).toBeDefined();
    expect(queryServerPid()).not.toBe(first);
  });

  test('a server that stops answering does not hold a timed-out query: it is killed, and the next query gets a new one', async () => {
    await runQuery('true', []);
    const stuck = queryServerPid()!;
    process.kill(stuck, 'SIGSTOP');
    try {
      // Without the guard this would wait for ever (the test's timeout).
      const result = await runQuery('sleep', ['30'], { timeoutMs: 200, killGraceMs: 100 });
      expect(result.timedOut).toBe(true);
      expect(result.spawnError?.message).toMatch(/query server did not answer .* restarted/);
      await until(() => !processAlive(stuck));
    } finally {
      try {
        process.kill(stuck, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    expect((await runQuery('echo', ['again'])).stdout).toBe('again\n');
    expect(queryServerPid()).not.toBe(stuck);
  });

  test('nor an aborted query', async () => {
    const server = Spawner.start();
    try {
      await server.run('true', []);
      process.kill(server.pid!, 'SIGSTOP');
      const controller = new AbortController();
      const pending = server.run('sleep', ['30'], { signal: controller.signal, killGraceMs: 100 });
      controller.abort();
      // Without the guard this would wait for ever (the test's timeout).
      const result = await pending;
      expect(result.aborted).toBe(true);
      expect(result.spawnError?.message).toMatch(/query server did not answer .* restarted/);
      expect(server.alive).toBe(false);
    } finally {
      try {
        process.kill(server.pid!, 'SIGCONT');
      } catch {
        /* gone */
      }
      await server.close();
    }
  });

  test('Spawner.close() leaves no server process; later runs fail as data', async () => {
    const spawner = Spawner.start();
    expect((await spawner.run('echo', ['hi'])).stdout).toBe('hi\n');
    const pid = spawner.pid!;
    expect(processAlive(pid)).toBe(true);
    await spawner.close();
    expect(processAlive(pid)).toBe(false);
    const after = await spawner.run('echo', ['hi']);
    expect(after.spawnError?.message).toMatch(/query server exited/);
  });

  test('a Spawner with no perl fails its runs as data', async () => {
    const spawner = Spawner.start({ perl: path.join(t.dir, 'no-perl') });
    expect(spawner.pid).toBeUndefined();
    const result = await spawner.run('echo', ['hi']);
    expect(result.spawnError?.message).toMatch(/query server exited/);
    await spawner.close();
  });
});

// These change runQuery's module state for good, so each runs in a Node of its own.
describeIf(hasPerl)('runQuery uses plain spawn()', () => {
  const moduleUrl = new URL('../../src/util/spawner.ts', import.meta.url).href;
  const runScript = (script: string, env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import * as s from ${JSON.stringify(moduleUrl)};\n${script}`,
      ],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, ...env },
      },
    );
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout);
  };

  test('an idle server keeps no Node process alive, and ends with it', async () => {
    const started = Date.now();
    const out = runScript(`
      s.useQueryServer(true);
      const r = await s.runQuery('echo', ['hi']);
      console.log(JSON.stringify({ stdout: r.stdout, pid: s.queryServerPid() }));
    `);
    expect(out.stdout).toBe('hi\n');
    expect(Date.now() - started).toBeLessThan(15_000);
    await until(() => !processAlive(out.pid));
  });

  test('until useQueryServer() is called (a one-shot CLI), and when STAGEPOST_QUERY_SERVER=0', () => {
    const script = `
      const before = await s.runQuery('echo', ['a']);
      const pidBefore = s.queryServerPid() ?? null;
      s.useQueryServer(true);
      const after = await s.runQuery('echo', ['b']);
      console.log(JSON.stringify({ out: before.stdout + after.stdout, pidBefore, server: s.queryServerPid() !== undefined }));
      await s.stopQueryServer();
    `;
    expect(runScript(script)).toEqual({ out: 'a\nb\n', pidBefore: null, server: true });
    expect(runScript(script, { STAGEPOST_QUERY_SERVER: '0' })).toEqual({
      out: 'a\nb\n',
      pidBefore: null,
      server: false,
    });
  });

  test('when perl is not installed', () => {
    const out = runScript(`
      s.useQueryServer(true);
      process.env.PATH = '/nonexistent';
      const first = await s.runQuery('/bin/echo', ['one']);
      const second = await s.runQuery('/bin/echo', ['two']);
      console.log(JSON.stringify({ first: first.stdout, second: second.stdout, pid: s.queryServerPid() ?? null }));
    `);
    expect(out).toEqual({ first: 'one\n', second: 'two\n', pid: null });
  });

  test('when the server died 3 times within a minute', () => {
    const out = runScript(`
      s.useQueryServer(true);
      const pids = [];
      for (let i = 0; i < 3; i++) {
        await s.runQuery('true', []);
        pids.push(s.queryServerPid());
        process.kill(s.queryServerPid(), 'SIGKILL');
        while (s.queryServerPid() !== undefined) await new Promise((r) => setTimeout(r, 10));
      }
      const after = await s.runQuery('echo', ['still works']);
      console.log(JSON.stringify({ servers: new Set(pids).size, stdout: after.stdout, pid: s.queryServerPid() ?? null }));
    `);
    expect(out).toEqual({ servers: 3, stdout: 'still works\n', pid: null });
  });
});
