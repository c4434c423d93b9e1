/**
 * Issue 16.11: text from mail and remotes printed to a terminal has its
 * control characters escaped. A mail caught by the real catcher with an
 * OSC "set window title" sequence in its subject is listed by `stagepost
 * mail` under a real pseudo-terminal (script(1)) as `\x1b]0;…\x07`, inert;
 * into a pipe the text is left as it is.
 */
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { memoryLogger } from '../../src/log.js';
import { MailCatcher } from '../../src/site/mail-catcher.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createLogger } from '../../src/log.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';

const TITLE = '\x1b]0;pwned\x07';
const CLEAR = '\x1b[2J';

/** Runs the CLI on a real pseudo-terminal; returns what the terminal received. */
function onTerminal(args: string[], cwd: string): Promise<string> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) =>
    execFile(
      'script',
      ['-qec', command, '/dev/null'],
      { cwd, env: { ...process.env, STAGEPOST_LOG_FORMAT: 'json' }, timeout: 60_000 },
      // A command's own exit status (script -e passes it on) is not a failure here.
      (err, stdout) =>
        err && typeof err.code !== 'number' ? reject(new Error(err.message)) : resolve(stdout),
    ),
  );
}

describeIf(hasTool('script'))('terminal output', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  test('a caught subject cannot set the terminal title', async () => {
    const port = await freePort();
    const catcher = new MailCatcher({
      branch: 'staging',
      port,
      stateDir: path.join(t.dir, 'state'),
      keep: 10,
      log: memoryLogger(),
    });
    await catcher.start();
    try {
      const caught = once(catcher, 'caught');
      await nodemailer
        .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true })
        .sendMail({
          from: 'app@example.test',
          to: 'someone@example.test',
          subject: `Hello ${TITLE}${CLEAR}there`,
          text: `body ${TITLE}line\r\nnext`,
        });
      await caught;
    } finally {
      await catcher.stop();
    }
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
  staging:
    dir: ./sites/staging
    smtp_port: ${port}
    sources: [{ name: app, vcs: git, url: "file:///nowhere.git", ref: main }]
`,
    );

    const listed = await onTerminal(['mail', 'staging', '--config', file], t.dir);
    expect(listed).toContain('Hello \\x1b]0;pwned\\x07\\x1b[2Jthere');
    expect(listed).not.toContain('\x1b');
    expect(listed).not.toContain('\x07');

    // Into a pipe (a file, jq, grep) the data is left as it was.
    const piped = await runCli(['mail', 'staging', '--config', file]);
    expect(piped.stdout).toContain(`Hello ${TITLE}${CLEAR}there`);
    const id = /^(\d{14}-[0-9a-f]{8})/m.exec(piped.stdout)![1];

    const raw = await onTerminal(['mail', 'staging', id, '--config', file], t.dir);
    expect(raw).not.toContain('\x1b');
    expect(raw).toMatch(/Subject: /);

    // An error message quoting what it was given is escaped too.
    const error = await onTerminal(['log', `x${TITLE}`, '--config', file], t.dir);
    expect(error).toContain('branch "x\\x1b]0;pwned\\x07" is not in');
    expect(error).not.toContain('\x1b');
  }, 60_000);
});

test('the pretty log (a terminal) escapes control characters of remote text', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'pretty', level: 'info', write: (l) => lines.push(l) });
  log.warn({ error: `fatal:${TITLE}gone` }, 'remote failing');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain('error=fatal:\\x1b]0;pwned\\x07gone');
  expect(lines[0]).not.toContain('\x1b');
});
