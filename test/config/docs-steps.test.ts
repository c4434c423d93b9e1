/**
 * Issue 15.5: docs/config.md lists every variable a step gets, and says how
 * a restart step leaves a server running. Checked against what
 * stepEnvironment really hands out, so the table cannot fall behind.
 */
import { configMarkdown } from '../../src/config/docs.js';
import { parseConfig } from '../../src/config/load.js';
import { stepEnvironment } from '../../src/site/urls.js';
import { BASE, FILE } from './helpers.js';

test('every variable stepEnvironment sets is in the table of docs/config.md', () => {
  const config = parseConfig(`${BASE}site: { base_url: "https://x.example" }\n`, FILE, {});
  const env = stepEnvironment(config, config.branches[0], {
    id: 1,
    revisions: { app: 'abc' },
    previous: { app: null },
  });
  const doc = configMarkdown();
  const names = Object.keys(env).map((n) => n.replace(/_APP$/, '_<SOURCE>'));
  expect(names).toContain('STAGEPOST_PORT');
  for (const name of [...names, 'STAGEPOST_JOB']) expect(doc).toContain(`| \`${name}\` |`);
  expect(doc).toMatch(/setsid nohup .*>server\.log 2>&1 <\/dev\/null &/);
});
