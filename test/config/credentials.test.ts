/**
 * `${credential:NAME}`: a secret from $CREDENTIALS_DIRECTORY/NAME (systemd's
 * LoadCredential=), wherever `${VAR}` works, masked like one, and a `check`
 * error with file, line and the unit line when it is missing.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { redactor } from '../../src/util/redact.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, FILE, lineWith, problemsOf } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let creds: string;
beforeEach(() => {
  t = tempDir();
  creds = path.join(t.dir, 'credentials');
  mkdirSync(creds);
});
afterEach(() => t.cleanup());

const credential = (name: string, value: string) => writeFileSync(path.join(creds, name), value);

const WITH_SECRETS = `${BASE}http: { listen: 9000, token: "\${credential:http_token}" }
notify:
  - use: email
    transport: "smtps://staging:\${credential:smtp_password}@mail.example.com:465"
    from: "Staging <staging@example.com>"
    to: [ops@example.com]
site: { smtp_relay: "smtp://relay:\${RELAY_PASSWORD}@mail:25" }
`;

test('the value of $CREDENTIALS_DIRECTORY/NAME is used, without its trailing newline, and masked', () => {
  credential('http_token', 'cred-token-5551\n');
  credential('smtp_password', 'p@ss/w:rd+${RELAY_PASSWORD}\r\n');
  const c = parseConfig(WITH_SECRETS, FILE, {
    CREDENTIALS_DIRECTORY: creds,
    RELAY_PASSWORD: 'relay-pw-777',
  });
  expect(c.http!.token).toBe('cred-token-5551');
  // One pass: a `${…}` inside a credential's value stays as it is; in a URL's
  // user:password@ it is percent-encoded like any substituted value.
  expect(c.notify[0].options.transport).toBe(
    `smtps://staging:${encodeURIComponent('p@ss/w:rd+${RELAY_PASSWORD}')}@mail.example.com:465`,
  );
  for (const secret of ['cred-token-5551', 'p@ss/w:rd+${RELAY_PASSWORD}', 'relay-pw-777'])
    expect(redactor.redact(`x ${secret} y`)).toBe('x [secure] y');
  expect(
    redactor.redact('token cred-token-5551, encoded p%40ss%2Fw%3Ard%2B%24%7BRELAY_PASSWORD%7D'),
  ).toBe('token [secure], encoded [secure]');
});

test('a missing credential is a problem naming it, its line and the unit line that provides it', () => {
  credential('http_token', 'cred-token-5552');
  const [problem, ...rest] = problemsOf(WITH_SECRETS, {
    CREDENTIALS_DIRECTORY: creds,
    RELAY_PASSWORD: 'x',
  });
  expect(rest).toEqual([]);
  expect(problem).toMatchObject({
    file: FILE,
    line: lineWith(WITH_SECRETS, 'transport:'),
    path: 'notify[0].transport',
  });
  expect(problem.message).toBe(
    `\${credential:smtp_password}: there is no credential smtp_password in ${creds} — add "LoadCredential=smtp_password:/etc/stagepost/smtp_password" to the unit (in a drop-in, see docs/service.md)`,
  );
});

test('without $CREDENTIALS_DIRECTORY every credential is a problem that says so', () => {
  const problems = problemsOf(WITH_SECRETS, { RELAY_PASSWORD: 'x' });
  expect(problems.map((p) => [p.line, p.path])).toEqual([
    [lineWith(WITH_SECRETS, 'http:'), 'http.token'],
    [lineWith(WITH_SECRETS, 'transport:'), 'notify[0].transport'],
  ]);
  expect(problems[0].message).toMatch(
    /^\$\{credential:http_token\}: no credentials were passed \(\$CREDENTIALS_DIRECTORY is not set\) — add "LoadCredential=http_token:\/etc\/stagepost\/http_token" to the unit/,
  );
});

test('a name that is no file name, and an unreadable credential, are problems too', () => {
  const bad = `${BASE}http: { listen: 9000, token: "\${credential:../../etc/passwd}" }\n`;
  expect(problemsOf(bad, { CREDENTIALS_DIRECTORY: creds })[0].message).toMatch(
    /^\$\{credential:\.\.\/\.\.\/etc\/passwd\}: a credential name is letters, digits/,
  );
  if (process.getuid?.() === 0) return; // root reads a file of mode 000
  credential('http_token', 'x');
  chmodSync(path.join(creds, 'http_token'), 0o000);
  const text = `${BASE}http: { listen: 9000, token: "\${credential:http_token}" }\n`;
  expect(problemsOf(text, { CREDENTIALS_DIRECTORY: creds })[0].message).toMatch(/EACCES/);
});

test('`stagepost check` fails with exit 2 and prints file:line and the LoadCredential= line', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(file, WITH_SECRETS);
  credential('smtp_password', 'cred-smtp-5553');
  const r = await runCli(['check', '--config', file], {
    env: { CREDENTIALS_DIRECTORY: creds, RELAY_PASSWORD: 'relay-pw' },
  });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(
    `${file}:${lineWith(WITH_SECRETS, 'http:')}: http.token: \${credential:http_token}: there is no credential http_token in ${creds} — add "LoadCredential=http_token:/etc/stagepost/http_token"`,
  );
  credential('http_token', 'cred-token-5553');
  const ok = await runCli(['check', '--config', file], {
    env: { CREDENTIALS_DIRECTORY: creds, RELAY_PASSWORD: 'relay-pw' },
  });
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  expect(ok.stdout).not.toContain('cred-');
});
