import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createGitPlugin } from '../plugins/git/index.js';
import { makeGitRemote } from '../test/helpers/git.js';
import { SSHD, startSshd } from '../test/helpers/sshd.js';
import { pluginContext } from '../test/plugins/vcs-helpers.js';

/** An ssh remote polled by the git plugin: with the shared connection, and with a login per poll (an operator's own GIT_SSH_COMMAND). */
export interface SshFigures {
  firstMs: number;
  sharedMs: number[];
  loginMs: number[];
  /** `ssh host true` over the same shared connection: one round trip plus the remote login shell. */
  trueMs: number[];
  /** sshd logins during the shared polls (the first included). */
  sharedLogins: number;
  polls: number;
}

/** null when there is no sshd on this machine (openssh-server). */
export async function measureSsh(dir: string, polls: number): Promise<SshFigures | null> {
  if (!existsSync(SSHD)) return null;
  const sshd = await startSshd(path.join(dir, 'sshd'));
  const state = path.join(dir, 'state');
  try {
    const remote = makeGitRemote(dir);
    remote.commit('main');
    const PATH = `${sshd.clientBin}:${process.env.PATH}`;
    const shared = createGitPlugin(pluginContext(state), { env: { PATH } });
    const login = createGitPlugin(pluginContext(path.join(dir, 'state-login')), {
      env: { PATH, GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' },
    });
    const source = [{ name: 'app', url: `ssh://${sshd.host}${remote.bare}`, ref: 'main' }];
    const timed = async (plugin: typeof shared) => {
      const t0 = performance.now();
      await plugin.remoteRevisions(source, { timeoutMs: 20_000 });
      return performance.now() - t0;
    };
    const firstMs = await timed(shared);
    const sharedMs: number[] = [];
    const loginMs: number[] = [];
    const trueMs: number[] = [];
    const muxedTrue = () => {
      const t0 = performance.now();
      if (!sshd.viaShared(state, ['true']))
        throw new Error('bench: `ssh host true` over the shared connection failed');
      return performance.now() - t0;
    };
    let sharedLogins = sshd.logins();
    // Alternated, so both see the same machine; the login polls' logins are not counted.
    for (let i = 0; i < polls; i++) {
      const before = sshd.logins();
      sharedMs.push(await timed(shared));
      sharedLogins += sshd.logins() - before;
      loginMs.push(await timed(login));
      trueMs.push(muxedTrue());
    }
    return { firstMs, sharedMs, loginMs, trueMs, sharedLogins, polls: polls + 1 };
  } finally {
    sshd.viaShared(state, ['-O', 'exit']);
    await sshd.stop();
  }
}
