import path from 'node:path';
import { createGitPlugin } from '../../plugins/git/index.js';
import { createSvnPlugin } from '../../plugins/svn/index.js';
import type { VcsPlugin } from '../../src/plugin-api.js';
import { makeGitRemote } from '../helpers/git.js';
import { SSHD, startSshd, type TestSshd } from '../helpers/sshd.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { pluginContext } from './vcs-helpers.js';

const Q = { timeoutMs: 20_000 };

/**
 * The ssh promise, against a real OpenSSH server: polls of an ssh
 * remote share one connection (ControlMaster), so after the first poll each
 * one is a round trip, not a login. The state dir has a space in it: the
 * socket path goes through sh (git) and through svn's own word splitting.
 */
describeIf(hasTool('ssh') && hasTool(SSHD))('ssh remotes, against a real sshd on 127.0.0.1', () => {
  let tmp: ReturnType<typeof tempDir>;
  let sshd: TestSshd;
  let state: string;
  beforeEach(async () => {
    tmp = tempDir('stagepost-ssh-');
    sshd = await startSshd(path.join(tmp.dir, 'sshd'));
    state = path.join(tmp.dir, 'st ate');
  });
  afterEach(async () => {
    // The shared connection outlives a poll by design; end it with the test.
    sshd.viaShared(state, ['-O', 'exit']);
    await sshd.stop();
    tmp.cleanup();
  });

  const env = () => ({ PATH: `${sshd.clientBin}:${process.env.PATH}` });
  const masterRunning = () => sshd.viaShared(state, ['-O', 'check']);

  async function pollsShareOneLogin(
    plugin: VcsPlugin,
    source: { name: string; url: string; ref: string },
    commit: () => string,
  ): Promise<void> {
    const first = commit();
    expect(await plugin.remoteRevisions([source], Q)).toEqual([{ revision: first }]);
    const second = commit();
    expect(await plugin.remoteRevisions([source], Q)).toEqual([{ revision: second }]);
    expect(await plugin.remoteRevisions([source], Q)).toEqual([{ revision: second }]);
    expect(sshd.logins()).toBe(1);
    // The connection stays open after the poll, for the next one.
    expect(masterRunning()).toBe(true);
  }

  test('git: three polls, one ssh login, each poll sees the new commit', async () => {
    const remote = makeGitRemote(tmp.dir);
    const plugin = createGitPlugin(pluginContext(state), { env: env() });
    await pollsShareOneLogin(
      plugin,
      { name: 'app', url: `ssh://${sshd.host}${remote.bare}`, ref: 'main' },
      () => remote.commit('main'),
    );
  });

  test('svn+ssh: three polls, one ssh login, each poll sees the new revision', async () => {
    const remote = makeSvnRemote(tmp.dir);
    const plugin = createSvnPlugin(pluginContext(state), { env: env() });
    await pollsShareOneLogin(
      plugin,
      { name: 'app', url: `svn+ssh://${sshd.host}${remote.repo}/trunk`, ref: '' },
      () => remote.commit('trunk'),
    );
  });

  test("an operator's own SVN_SSH or GIT_SSH_COMMAND is used as it is: every poll logs in anew", async () => {
    const git = makeGitRemote(tmp.dir);
    const plugin = createGitPlugin(pluginContext(state), {
      env: { ...env(), GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' },
    });
    const source = { name: 'app', url: `ssh://${sshd.host}${git.bare}`, ref: 'main' };
    const head = git.commit('main');
    expect(await plugin.remoteRevisions([source], Q)).toEqual([{ revision: head }]);
    expect(await plugin.remoteRevisions([source], Q)).toEqual([{ revision: head }]);
    const svn = makeSvnRemote(tmp.dir);
    const svnPlugin = createSvnPlugin(pluginContext(state), {
      env: { ...env(), SVN_SSH: 'ssh -o BatchMode=yes' },
    });
    const revision = svn.commit('trunk');
    expect(
      await svnPlugin.remoteRevisions(
        [{ name: 'app', url: `svn+ssh://${sshd.host}${svn.repo}/trunk`, ref: '' }],
        Q,
      ),
    ).toEqual([{ revision }]);
    expect(sshd.logins()).toBe(3);
    expect(masterRunning()).toBe(false);
  });
});
