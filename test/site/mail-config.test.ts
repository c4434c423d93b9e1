/**
 * `stagepost mail-config`: a Postfix transport map from each mail-in customer
 * to its branch's catcher, accepted by a real `postmap` where Postfix is
 * installed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { renderMailConfig } from '../../src/site/mail-config.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { describeIf, hasTool } from '../helpers/tools.js';

const CONFIG = (site: string) => `version: 1
site: { ${site} }
branches:
  staging:
    dir: ./sites/staging
    sources: [{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: main }]
    customers: [osf, acme]
    mailin: [osf, acme]
    smtp_port: 2526
  branch1:
    dir: ./sites/branch1
    sources: [{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: b1 }]
    customers: [other]
    mailin: [other]
    smtp_port: 2527
  nomail:
    dir: ./sites/nomail
    sources: [{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: b2 }]
    customers: [osf]
`;

test('one line per mail-in customer, to the catcher of its branch', () => {
  const config = parseConfig(CONFIG('mail_domain: staging.example.test'), '/srv/ci.yaml', {});
  const { text, skipped } = renderMailConfig(config);
  expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
    'osf.staging.example.test\tsmtp:[127.0.0.1]:2526',
    'acme.staging.example.test\tsmtp:[127.0.0.1]:2526',
    'other.staging.example.test\tsmtp:[127.0.0.1]:2527',
  ]);
  expect(skipped).toEqual([]);
});

test('the CLI prints it; without site.mail_domain it says what to add (exit 2)', async () => {
  const t = tempDir();
  try {
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(file, CONFIG('mail_domain: staging.example.test'));
    const ok = await runCli(['mail-config', '--config', file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('other.staging.example.test\tsmtp:[127.0.0.1]:2527\n');
    writeFileSync(file, CONFIG('base_url: "https://staging.example.test"'));
    const missing = await runCli(['mail-config', '--config', file]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/add "mail_domain: staging.example.com" under site:/);
  } finally {
    t.cleanup();
  }
});

describeIf(hasTool('postmap'))('a real postmap', () => {
  test('accepts the map and answers each customer with its catcher', () => {
    const t = tempDir();
    try {
      const config = parseConfig(CONFIG('mail_domain: staging.example.test'), '/srv/ci.yaml', {});
      const map = path.join(t.dir, 'stagepost_transport');
      writeFileSync(map, renderMailConfig(config).text);
      const made = spawnSync('postmap', [`lmdb:${map}`], { encoding: 'utf8', timeout: 10_000 });
      const kind = made.status === 0 ? 'lmdb' : 'hash';
      if (made.status !== 0) {
        const hash = spawnSync('postmap', [`hash:${map}`], { encoding: 'utf8', timeout: 10_000 });
        expect(hash.stderr).toBe('');
        expect(hash.status).toBe(0);
      }
      const query = spawnSync('postmap', ['-q', 'other.staging.example.test', `${kind}:${map}`], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(query.stdout.trim()).toBe('smtp:[127.0.0.1]:2527');
    } finally {
      t.cleanup();
    }
  });
});
