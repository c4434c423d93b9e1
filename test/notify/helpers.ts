import { SMTPServer } from 'smtp-server';
import type { NotifierConfig } from '../../src/config/types.js';
import type { BuildNotification, EventName } from '../../src/plugin-api.js';

/** A NotifierConfig as the config loader makes it. */
export function notifierConfig(
  use: string,
  on: EventName[],
  options: Record<string, unknown>,
  line = 10,
): NotifierConfig {
  return {
    use,
    on,
    options,
    file: '/srv/stagepost/ci.yaml',
    line,
    key: `${use} ${JSON.stringify(options)}`,
  };
}

export function buildDraft(
  overrides: Partial<Omit<BuildNotification, 'events' | 'build'>> & {
    build?: Partial<BuildNotification['build']>;
  } = {},
): Omit<BuildNotification, 'events'> {
  const { build, ...rest } = overrides;
  return {
    type: 'build',
    branch: 'branch1',
    revisions: [
      {
        source: 'karl',
        vcs: 'git',
        revision: '3f2a9c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        short: '3f2a9c1',
        previous: '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      },
      { source: 'osfkarl', vcs: 'svn', revision: '4812', short: 'r4812', previous: '4800' },
    ],
    commits: [
      {
        source: 'karl',
        id: '3f2a9c1',
        author: 'Karl Dev',
        email: 'karl@example.com',
        subject: 'Fix the widget',
      },
      {
        source: 'osfkarl',
        id: 'r4812',
        author: 'chris',
        email: 'chris@example.com',
        subject: 'Tune the <script>alert(1)</script> page',
      },
    ],
    customerUrls: ['https://karltest.example.com/branch1/osf/'],
    ...rest,
    build: {
      id: 12,
      result: 'failure',
      startedAt: '2024-05-01T10:00:00.000Z',
      durationMs: 61_000,
      failedStep: 'buildout',
      forced: false,
      steps: [
        {
          name: 'buildout',
          result: 'failure',
          durationMs: 60_000,
          exitCode: 2,
          reason: 'exit code 2',
        },
        { name: 'restart', result: 'skipped', durationMs: 0 },
      ],
      logTail: Array.from({ length: 100 }, (_, i) => `log line ${i + 1}`),
      logUrl: 'http://127.0.0.1:8750/api/branches/branch1/builds/12/log',
      ...build,
    },
  };
}

export interface ReceivedMail {
  from: string;
  rcpt: string[];
  raw: string;
}

/** A real SMTP server on 127.0.0.1 that keeps what it receives. */
export interface TestSmtp {
  port: number;
  mails: ReceivedMail[];
  /** Resolves once `count` mails have arrived in total. */
  waitFor(count: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
  /** Every AUTH tried, as `user:password`. */
  authAttempts: string[];
}

/**
 * A real SMTP server on 127.0.0.1 that records what it gets. Any AUTH is
 * accepted and none is needed, unless `auth` names the one user and password
 * it then requires.
 */
export async function startSmtp(
  port = 0,
  mails: ReceivedMail[] = [],
  auth?: { user: string; password: string },
): Promise<TestSmtp> {
  const waiters: Array<{ count: number; resolve: (m: ReceivedMail[]) => void }> = [];
  const authAttempts: string[] = [];
  const server = new SMTPServer({
    authOptional: !auth,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    onAuth(tried, _session, callback) {
      authAttempts.push(`${tried.username}:${tried.password}`);
      if (!auth || (tried.username === auth.user && tried.password === auth.password))
        callback(null, { user: tried.username });
      else callback(new Error('Invalid username or password'));
    },
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcpt: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        for (const w of waiters.filter((x) => mails.length >= x.count)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(mails);
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  // A client killed mid-session (the crash tests kill the daemon) resets its
  // connection; smtp-server reports that as an 'error' event, which must not
  // end the test process.
  server.on('error', () => undefined);
  const address = server.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    mails,
    waitFor: (count) =>
      mails.length >= count
        ? Promise.resolve(mails)
        : new Promise((resolve) => waiters.push({ count, resolve })),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    authAttempts,
  };
}

/** Just enough MIME for assertions: unfolded headers, and the decoded text and html parts. */
export function parseMail(raw: string): {
  headers: Record<string, string>;
  text: string;
  html: string;
} {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const headers = parseHeaders(head);
  const body = rest.join('\n\n');
  const boundary = /boundary="?([^";]+)"?/.exec(headers['content-type'] ?? '')?.[1];
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [`${head}\n\n${body}`];
  let text = '';
  let html = '';
  for (const part of parts) {
    const [ph, ...pb] = part.replace(/^\r?\n/, '').split(/\r?\n\r?\n/);
    const h = parseHeaders(ph);
    const decoded = decode(pb.join('\n\n'), h['content-transfer-encoding'] ?? '7bit');
    if ((h['content-type'] ?? '').startsWith('text/html')) html = decoded;
    else text = decoded;
  }
  return { headers, text, html };
}

function parseHeaders(head: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

function decode(body: string, encoding: string): string {
  if (/base64/i.test(encoding))
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/quoted-printable/i.test(encoding)) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/\r\n/g, '\n');
    return Buffer.from(
      bytes.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
  }
  return body.replace(/\r\n/g, '\n');
}
