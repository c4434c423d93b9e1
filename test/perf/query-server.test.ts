/**
 * The daemon starts its remote queries (`git ls-remote`, `git upload-pack`) from the small fork server
 * (src/util/spawner.pl), not by forking itself; STAGEPOST_QUERY_SERVER=0
 * turns that off. A PATH shim records the parent of every git child.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { isGitQuery, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, stagingConfig, type LogEvent } from '../helpers/cli.js';
import { describeIf, hasTool } from '../helpers/tools.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  t.cleanup();
});

const polled = (e: LogEvent) => e.msg === 'polled';

/** `git` that logs "<parent's command line> <argv>" and execs the real one. */
function gitShim(dir: string): {
  env: NodeJS.ProcessEnv;
  parents(): Array<{ parent: string; args: string }>;
} {
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const log = path.join(dir, 'git-calls.log');
  const shim = path.join(dir, 'git');
  writeFileSync(
    shim,
    `#!/bin/sh\nprintf '%s\\t%s\\n' "$(tr '\\0' ' ' < /proc/$PPID/cmdline)" "$*" >> "$SHIM_LOG"\nexec '${real.replace(/'/g, `'\\''`)}' "$@"\n`,
  );
  chmodSync(shim, 0o755);
  return {
    env: { PATH: `${dir}:${process.env.PATH ?? ''}`, SHIM_LOG: log },
    parents: () =>
      (existsSync(log) ? readFileSync(log, 'utf8') : '')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [parent, args] = l.split('\t');
          return { parent: parent, args: args };
        }),
  };
}

describeIf(hasTool('perl'))('the query server', () => {
  test("the remote queries of the daemon are started by spawner.pl; the build's git commands are not", async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const shim = gitShim(t.dir);
    daemon = new DaemonProcess(stagingConfig(t.dir, remote.url), shim.env);
    await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });
    await daemon.waitFor(polled, { count: 5, what: 'five polls' });
    const calls = shim.parents();
    const queries = calls.filter((c) => isGitQuery(c.args));
    expect(queries.length).toBeGreaterThanOrEqual(5);
    for (const q of queries) expect(q.parent).toMatch(/perl .*spawner\.pl/);
    // Checkouts stream their output into the build log: started by the daemon itself.
    const checkout = calls.filter((c) => !isGitQuery(c.args));
    expect(checkout.length).toBeGreaterThan(0);
    for (const c of checkout) expect(c.parent).not.toMatch(/spawner\.pl/);
    expect(await daemon.stop()).toBe(0);
  });

  test('STAGEPOST_QUERY_SERVER=0 spawns them from the daemon', async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const shim = gitShim(t.dir);
    daemon = new DaemonProcess(stagingConfig(t.dir, remote.url), {
      ...shim.env,
      STAGEPOST_QUERY_SERVER: '0',
    });
    await daemon.waitFor(polled, { count: 3, what: 'three polls' });
    const queries = shim.parents().filter((c) => isGitQuery(c.args));
    expect(queries.length).toBeGreaterThanOrEqual(3);
    for (const q of queries) expect(q.parent).toMatch(/stagepost\.js run/);
    expect(await daemon.stop()).toBe(0);
  });
});
