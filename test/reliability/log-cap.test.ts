/**
 * A step printing far more than builds.log_max (issue 16, point 9): the log on
 * disk stays within the cap with its start, a cut marker and its end, and the
 * failure mail carries the real last lines.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { isBuildFinished } from '../helpers/cli.js';
import { parseMail, startSmtp } from '../notify/helpers.js';
import { Daemons, gitBranchYaml, writeCi } from './helpers.js';

const daemons = new Daemons();
let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir('stagepost-logcap-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

test('a step printing 8 MB under log_max 256KB: log within the cap, cut marked, the end kept, the mail has the last lines', async () => {
  const smtp = await startSmtp();
  try {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const file = writeCi(
      t.dir,
      `steps:
  - name: noisy
    run: 'echo FIRST-WORDS; head -c 8000000 /dev/zero | tr "\\\\0" x | fold -w 99; echo LAST-WORDS; exit 3'
notify:
  - { use: email, transport: "smtp://127.0.0.1:${smtp.port}", from: "s@example.com", to: [ops@example.com], on: [failure] }
branches:
${gitBranchYaml('b1', remote.url, 'main')}`,
      { builds: '{ concurrency: 1, step_timeout: 30s, log_max: 256KB }' },
    );
    const d = daemons.start(file);
    const [done] = await d.waitFor(isBuildFinished('b1'));
    expect(done.result).toBe('failure');
    const log = path.join(t.dir, 'state', 'logs', 'b1', `${done.build as number}.log`);
    expect(statSync(log).size).toBeLessThanOrEqual(256 * 1024 + 2048);
    const text = readFileSync(log, 'utf8');
    expect(text).toContain('FIRST-WORDS');
    expect(text).toMatch(/\[stagepost: this log reached half of builds\.log_max \(256 KB\)/);
    expect(text).toMatch(/\[stagepost: [\d.]+ MB left out here\]/);
    expect(text).toMatch(/LAST-WORDS\n(.*\n)*stagepost build b1#1: failure at noisy/);
    const [mail] = await smtp.waitFor(1);
    expect(parseMail(mail.raw).text).toContain('LAST-WORDS');
  } finally {
    await smtp.close();
  }
}, 40_000);
