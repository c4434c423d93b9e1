import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { memoryLogger } from '../../src/log.js';
import type { NotifierConfig } from '../../src/config/types.js';
import type { EventName } from '../../src/plugin-api.js';
import emailPlugin from '../../plugins/email/index.js';
import { tempDir } from '../helpers/tmp.js';
import { buildDraft, notifierConfig, parseMail, startSmtp, type TestSmtp } from './helpers.js';

const SECRET = 'hunter2-smtp-password';

describe('email notifier against a real SMTP server', () => {
  let tmp: ReturnType<typeof tempDir>;
  let smtp: TestSmtp;
  const dispatchers: NotifyDispatcher[] = [];

  beforeEach(async () => {
    tmp = tempDir();
    smtp = await startSmtp();
  });
  afterEach(async () => {
    for (const d of dispatchers.splice(0)) await d.close();
    await smtp.close();
    tmp.cleanup();
  });

  function email(
    on: EventName[],
    options: Record<string, unknown> = {},
    line = 10,
  ): NotifierConfig {
    return notifierConfig(
      'email',
      on,
      {
        transport: `smtp://127.0.0.1:${smtp.port}`,
        from: 'Staging <staging@example.com>',
        to: ['ops@example.com'],
        ...options,
      },
      line,
    );
  }

  async function dispatcher(configs: NotifierConfig[], extra: { retryBaseMs?: number } = {}) {
    const log = memoryLogger();
    const d = new NotifyDispatcher({
      stateDir: path.join(tmp.dir, 'state'),
      log,
      redact: (t) => t.replaceAll(SECRET, '[secure]'),
      retryBaseMs: extra.retryBaseMs ?? 3_600_000,
    });
    dispatchers.push(d);
    const problems = await d.setNotifiers(configs, new Map(), {
      configDir: tmp.dir,
      httpUrl: 'http://127.0.0.1:8750',
    });
    expect(problems).toEqual([]);
    return { d, log };
  }

  const outboxFiles = () => {
    const dir = path.join(tmp.dir, 'state', 'outbox');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  };

  it('mails ops and the git and svn committers once each, with subject and body per SPEC', async () => {
    const { d } = await dispatcher([
      email(['failure', 'fixed'], {
        to: ['ops@example.com', 'Lead <lead@example.com>'],
        committers: true,
      }),
    ]);
    const draft = buildDraft({
      commits: [
        ...buildDraft().commits,
        {
          source: 'karl',
          id: 'aaaaaaa',
          author: 'Karl Dev',
          email: 'KARL@example.com',
          subject: 'second commit, same author',
        },
        {
          source: 'karl',
          id: 'bbbbbbb',
          author: 'Ops',
          email: 'ops@example.com',
          subject: 'an operator commits too',
        },
        {
          source: 'karl',
          id: 'ccccccc',
          author: 'Mallory',
          email: 'evil@example.com\nBcc: victim@example.com',
          subject: 'header injection',
        },
        {
          source: 'karl',
          id: 'ddddddd',
          author: 'Mallory',
          email: '<script>@example.com',
          subject: 'markup',
        },
      ],
      build: {
        logTail: [
          ...Array.from({ length: 150 }, (_, i) => `log line ${i + 1}`),
          `password was ${SECRET}`,
        ],
      },
    });
    await d.dispatch(draft, ['failure']);

    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0];
    expect(mail.from).toBe('staging@example.com');
    expect(mail.rcpt).toEqual([
      'ops@example.com',
      'lead@example.com',
      'karl@example.com',
      'chris@example.com',
    ]);
    const { headers, text, html } = parseMail(mail.raw);
    expect(headers.subject).toBe(
      '[stagepost] branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812',
    );
    expect(headers['auto-submitted']).toBe('auto-generated');
    expect(text).toContain('https://karltest.example.com/branch1/osf/');
    expect(text).toMatch(/3f2a9c1\s+Karl Dev\s+Fix the widget/);
    expect(text).toMatch(/r4812\s+chris\s+Tune the <script>alert\(1\)<\/script> page/);
    expect(text).toMatch(/buildout\s+FAILED\s+1m00s\s+exit code 2/);
    expect(text).toMatch(/restart\s+skipped/);
    expect(text).toContain('Last 100 lines of the log');
    expect(text).not.toContain('log line 51\n');
    expect(text).toContain('| log line 52\n');
    expect(text).toContain('| log line 150\n');
    expect(text).toContain('Full log: http://127.0.0.1:8750/api/branches/branch1/builds/12/log');
    expect(raw(mail)).not.toContain(SECRET);
    expect(text).toContain('password was [secure]');
    expect(html).toContain('Tune the &lt;script&gt;alert(1)&lt;/script&gt; page');
    expect(html).not.toContain('<script>');
    expect(html).toContain(
      '<a href="http://127.0.0.1:8750/api/branches/branch1/builds/12/log">Full log</a>',
    );
    expect(outboxFiles()).toEqual([]);
  });

  it('sends only for the events a notifier picks with `on`, naming the picked event', async () => {
    const { d } = await dispatcher([
      email(['failure', 'fixed'], {}, 10),
      email(['still-failing'], { to: 'team@example.com' }, 20),
    ]);
    await d.dispatch(buildDraft({ build: { result: 'success', failedStep: undefined } }), [
      'success',
    ]);
    expect(smtp.mails).toHaveLength(0);

    await d.dispatch(buildDraft({ build: { result: 'success', failedStep: undefined } }), [
      'success',
      'fixed',
    ]);
    expect(smtp.mails.map((m) => parseMail(m.raw).headers.subject)).toEqual([
      '[stagepost] branch1 FIXED karl@3f2a9c1 osfkarl@r4812',
    ]);

    await d.dispatch(buildDraft(), ['failure', 'still-failing']);
    const subjects = smtp.mails
      .slice(1)
      .map((m) => `${m.rcpt.join(',')} ${parseMail(m.raw).headers.subject}`)
      .sort();
    expect(subjects).toEqual([
      'ops@example.com [stagepost] branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812',
      'team@example.com [stagepost] branch1 STILL FAILING (buildout) karl@3f2a9c1 osfkarl@r4812',
    ]);
  });

  it('words jobs, config errors, success and started like SPEC', async () => {
    const { d } = await dispatcher([email(['success', 'started', 'job-failure', 'config-error'])]);
    await d.dispatch(buildDraft({ build: { result: 'success', failedStep: undefined } }), [
      'success',
    ]);
    await d.dispatch(
      buildDraft({
        build: { result: undefined, durationMs: undefined, steps: [], logTail: [] },
        commits: [],
      }),
      ['started'],
    );
    await d.dispatch(
      {
        type: 'job',
        job: 'nightly-sync',
        branch: 'staging',
        result: 'failure',
        startedAt: '2024-05-01T02:00:00Z',
        durationMs: 5000,
        logTail: ['sync failed'],
      },
      ['job-failure'],
      'staging',
    );
    await d.dispatch(
      {
        type: 'config',
        file: '/srv/stagepost/ci.yaml',
        message: 'ci.yaml:3: unknown key "brnches"',
      },
      ['config-error'],
    );
    const mails = smtp.mails.map((m) => parseMail(m.raw));
    expect(mails.map((m) => m.headers.subject)).toEqual([
      '[stagepost] branch1 SUCCESS karl@3f2a9c1 osfkarl@r4812',
      '[stagepost] branch1 STARTED karl@3f2a9c1 osfkarl@r4812',
      '[stagepost] staging JOB FAILED nightly-sync',
      '[stagepost] CONFIG ERROR ci.yaml',
    ]);
    expect(mails[0].text).not.toContain('Last ');
    expect(mails[2].text).toContain('| sync failed');
    expect(mails[3].text).toContain('ci.yaml:3: unknown key "brnches"');
  });

  it('keeps a mail in the outbox while the server is down and delivers it once when it is back', async () => {
    const port = smtp.port;
    await smtp.close();
    const { d, log } = await dispatcher([
      email(['failure'], { transport: `smtp://stagepost:${SECRET}@127.0.0.1:${port}` }),
    ]);
    await d.dispatch(buildDraft(), ['failure']);
    await d.dispatch(buildDraft({ build: { id: 13 } }), ['failure']);

    expect(d.outboxSize()).toBe(2);
    const files = outboxFiles();
    expect(files).toHaveLength(2);
    const stored = readFileSync(path.join(tmp.dir, 'state', 'outbox', files[0]), 'utf8');
    expect(stored).toContain('[stagepost] branch1 FAILED (buildout)');
    expect(stored).not.toContain(SECRET);
    const failures = log.lines.filter(
      (l) => l.msg === 'notification delivery failed; kept in the outbox for retry',
    );
    expect(failures).toHaveLength(1);
    expect(JSON.stringify(log.lines)).not.toContain(SECRET);

    smtp = await startSmtp(port);
    await d.flush();
    await d.flush();
    expect(smtp.mails).toHaveLength(2);
    expect(smtp.mails.map((m) => parseMail(m.raw).text.match(/build #(\d+)/)?.[1]).sort()).toEqual([
      '12',
      '13',
    ]);
    expect(d.outboxSize()).toBe(0);
    expect(outboxFiles()).toEqual([]);
    expect(log.lines.some((l) => l.msg === 'notification delivery works again')).toBe(true);
  });

  it('retries on its own timer with backoff', async () => {
    const port = smtp.port;
    await smtp.close();
    const { d } = await dispatcher(
      [email(['failure'], { transport: `smtp://127.0.0.1:${port}` })],
      { retryBaseMs: 25 },
    );
    await d.dispatch(buildDraft(), ['failure']);
    expect(d.outboxSize()).toBe(1);
    smtp = await startSmtp(port);
    await smtp.waitFor(1);
    await d.flush();
    expect(smtp.mails).toHaveLength(1);
    expect(outboxFiles()).toEqual([]);
  });

  it('delivers what a stopped dispatcher left in the outbox once, after a restart on the same state_dir', async () => {
    const port = smtp.port;
    await smtp.close();
    const config = email(['failure'], { transport: `smtp://127.0.0.1:${port}` });
    const first = await dispatcher([config]);
    await first.d.dispatch(buildDraft(), ['failure']);
    await first.d.close();
    expect(outboxFiles()).toHaveLength(1);

    smtp = await startSmtp(port);
    const second = await dispatcher([{ ...config, line: 44 }]);
    await second.d.start();
    await smtp.waitFor(1);
    await second.d.flush();
    expect(smtp.mails).toHaveLength(1);
    expect(outboxFiles()).toEqual([]);

    const third = await dispatcher([config]);
    await third.d.start();
    await third.d.flush();
    expect(smtp.mails).toHaveLength(1);
  });

  it('writes .eml files with the dir: transport, relative to the config directory', async () => {
    const { d } = await dispatcher([email(['failure'], { transport: 'dir:./mail' })]);
    await d.dispatch(buildDraft(), ['failure']);
    const files = readdirSync(path.join(tmp.dir, 'mail'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.eml$/);
    const mail = parseMail(readFileSync(path.join(tmp.dir, 'mail', files[0]), 'utf8'));
    expect(mail.headers.subject).toBe(
      '[stagepost] branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812',
    );
    expect(mail.headers.to).toBe('ops@example.com');
    expect(smtp.mails).toHaveLength(0);
  });

  it('mails only `to` without committers: true, and nothing at all without recipients', async () => {
    const { d } = await dispatcher([
      email(['failure']),
      email(['failure'], { to: [], committers: true }, 20),
    ]);
    await d.dispatch(buildDraft(), ['failure']);
    await d.dispatch(buildDraft({ commits: [] }), ['failure']);
    expect(smtp.mails.map((m) => m.rcpt)).toEqual([
      ['ops@example.com'],
      ['karl@example.com', 'chris@example.com'],
      ['ops@example.com'],
    ]);
  });

  it('an allow-list mails only committers of the listed domains and addresses', async () => {
    const { d } = await dispatcher([
      email(['failure'], {
        committers: { domains: ['example.com'], addresses: ['Ann@Partner.org'] },
      }),
      email(['failure'], { to: [], committers: { domains: ['team.example.com'] } }, 20),
    ]);
    const commit = (id: string, address: string) => ({
      source: 'karl',
      id,
      author: 'Someone',
      email: address,
      subject: `commit ${id}`,
    });
    await d.dispatch(
      buildDraft({
        commits: [
          commit('a1', 'karl@example.com'),
          commit('a2', 'dev@team.example.com'),
          commit('a3', 'upstream@elsewhere.org'),
          commit('a4', 'ann@partner.org'),
          commit('a5', 'mallory@example.com.evil.org'),
          commit('a6', 'bob@partner.org'),
        ],
      }),
      ['failure'],
    );
    expect(smtp.mails.map((m) => m.rcpt)).toEqual([
      ['ops@example.com', 'karl@example.com', 'dev@team.example.com', 'ann@partner.org'],
      ['dev@team.example.com'],
    ]);
  });

  it('bounds very long lines from commits and logs', async () => {
    const { d } = await dispatcher([email(['failure'])]);
    await d.dispatch(
      buildDraft({
        commits: [
          { source: 'karl', id: '3f2a9c1', author: 'A'.repeat(5000), subject: 'S'.repeat(50_000) },
        ],
        build: { logTail: ['L'.repeat(100_000)] },
      }),
      ['failure'],
    );
    const { text } = parseMail(smtp.mails[0].raw);
    expect(text.length).toBeLessThan(10_000);
    expect(text).toContain('S'.repeat(150));
  });
});

describe('email option validation', () => {
  const validate = (options: Record<string, unknown>) =>
    emailPlugin.validate!(options).map((p) => `${p.path.join('.')}: ${p.message}`);

  it('accepts the SPEC forms', () => {
    expect(
      validate({
        transport: 'smtps://user:pw@mail.example.com:465',
        from: 'Staging <staging@example.com>',
        to: ['ops@example.com'],
        committers: true,
      }),
    ).toEqual([]);
    expect(
      validate({ transport: 'dir:./mail', from: 'staging@example.com', to: 'ops@example.com' }),
    ).toEqual([]);
  });

  it('checks a committers allow-list', () => {
    const base = { transport: 'dir:./mail', from: 'staging@example.com', to: 'ops@example.com' };
    expect(validate({ ...base, committers: { domains: ['example.com'] } })).toEqual([]);
    expect(validate({ ...base, to: [], committers: { addresses: ['a@example.com'] } })).toEqual([]);
    expect(
      validate({
        ...base,
        committers: { domains: ['not a domain'], adresses: [], addresses: 'x' },
      }),
    ).toEqual([
      'committers.adresses: unknown key; give domains and/or addresses',
      'committers.domains.0: "not a domain" is not a domain like example.com',
      'committers.addresses: give a list',
    ]);
    expect(validate({ ...base, committers: {} })).toEqual([
      expect.stringMatching(/^committers: an empty allow-list mails no committer/),
    ]);
    expect(validate({ ...base, committers: 'yes' })).toEqual([
      expect.stringMatching(/^committers: give true, false, or an allow-list/),
    ]);
  });

  it('names each problem', () => {
    const problems = validate({ transport: 'ftp://x', to: ['not an address'], comitters: true });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^comitters: unknown option/),
        expect.stringMatching(/^transport: unknown transport "ftp:\/\/x"/),
        expect.stringMatching(/^from: give the sender address/),
        expect.stringMatching(/^to\.0: "not an address" is not a mail address/),
      ]),
    );
    expect(validate({ from: 'a@example.com' })).toEqual([
      expect.stringMatching(/^to: give at least one address/),
    ]);
  });
});

function raw(mail: { raw: string }): string {
  return mail.raw;
}
