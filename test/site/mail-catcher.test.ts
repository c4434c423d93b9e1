import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { memoryLogger } from '../../src/log.js';
import { MailCatcher } from '../../src/site/mail-catcher.js';
import { listCaughtMail, readCaughtMail } from '../../src/site/mail-store.js';
import { tempDir } from '../helpers/tmp.js';

interface Relayed {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server standing in for site.smtp_relay. */
async function startRelay(
  port = 0,
): Promise<{ server: SMTPServer; port: number; got: Relayed[]; next: () => Promise<Relayed> }> {
  const got: Relayed[] = [];
  const waiters: Array<(m: Relayed) => void> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    logger: false,
    closeTimeout: 500,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const m = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString(),
        };
        got.push(m);
        waiters.shift()?.(m);
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.server.address() as AddressInfo).port,
    got,
    next: () => new Promise((r) => waiters.push(r)),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function send(port: number, mail: SendMailOptions): Promise<void> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
  });
  try {
    await transport.sendMail(mail);
  } finally {
    transport.close();
  }
}

describe('MailCatcher', () => {
  let tmp: ReturnType<typeof tempDir>;
  const cleanups: Array<() => Promise<void>> = [];
  beforeEach(() => {
    tmp = tempDir('stagepost-mail-');
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    tmp.cleanup();
  });

  async function catcher(
    opts: { branch?: string; keep?: number; relay?: { url: string } | null; retryMs?: number } = {},
  ) {
    const log = memoryLogger();
    const c = new MailCatcher({
      branch: opts.branch ?? 'branch1',
      port: 0,
      host: '127.0.0.1',
      stateDir: tmp.dir,
      keep: opts.keep ?? 300,
      relay: opts.relay ?? null,
      log,
      retryMs: opts.retryMs,
    });
    await c.start();
    cleanups.push(() => c.stop());
    return Object.assign(c, { log });
  }
  async function relayServer(port?: number) {
    const r = await startRelay(port);
    cleanups.push(() => new Promise<void>((res) => r.server.close(() => res())));
    return r;
  }

  it('catches a message sent over SMTP and lists it (envelope, decoded subject), raw readable without a daemon', async () => {
    const c = await catcher();
    const caught = once(c, 'caught');
    await send(c.port, {
      from: 'App <app@example.com>',
      to: 'alice@example.org',
      cc: 'bob@example.org',
      bcc: 'carol@example.org',
      subject: 'Grüße aus Staging',
      text: 'hello from staging',
    });
    await caught;
    await c.stop();

    const list = await listCaughtMail(tmp.dir, 'branch1');
    expect(list).toEqual([
      {
        id: expect.stringMatching(/^\d{14}-[0-9a-f]{8}$/),
        receivedAt: expect.any(String),
        from: 'app@example.com',
        to: ['alice@example.org', 'bob@example.org', 'carol@example.org'],
        subject: 'Grüße aus Staging',
        size: expect.any(Number),
        relayed: null,
      },
    ]);
    const raw = await readCaughtMail(tmp.dir, 'branch1', list[0].id);
    expect(raw).toContain('hello from staging');
    expect(raw.length).toBe(list[0].size);
    expect(
      readdirSync(path.join(tmp.dir, 'mail', 'branch1')).filter((n) => n.endsWith('.eml')),
    ).toEqual([`${list[0].id}.eml`]);
    await expect(
      readCaughtMail(tmp.dir, 'branch1', '00000000000000-deadbeef'),
    ).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(readCaughtMail(tmp.dir, 'branch1', '../../etc/passwd')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    expect(await listCaughtMail(tmp.dir, 'nobranch')).toEqual([]);
  });

  it('relays through site.smtp_relay only when relay is set', async () => {
    const relay = await relayServer();
    const quiet = await catcher({ branch: 'staging' });
    const loud = await catcher({
      branch: 'branch1',
      relay: { url: `smtp://127.0.0.1:${relay.port}` },
    });

    const caughtQuietly = once(quiet, 'caught');
    await send(quiet.port, {
      from: 'app@example.com',
      to: 'real-customer@example.org',
      subject: 'must not leave',
      text: 'x',
    });
    await caughtQuietly;

    const relayed = once(loud, 'relayed');
    const arrived = relay.next();
    await send(loud.port, {
      from: 'app@example.com',
      to: 'tester@example.org',
      bcc: 'hidden@example.org',
      subject: 'may leave',
      text: 'y',
    });
    const message = await arrived;
    const [id] = await relayed;

    expect(relay.got).toHaveLength(1);
    expect(message).toMatchObject({
      from: 'app@example.com',
      to: ['tester@example.org', 'hidden@example.org'],
    });
    expect(message.raw).toContain('Subject: may leave');
    expect(message.raw).not.toContain('hidden@example.org');
    expect((await listCaughtMail(tmp.dir, 'branch1'))[0]).toMatchObject({ id, relayed: true });
    expect((await listCaughtMail(tmp.dir, 'staging'))[0]).toMatchObject({
      subject: 'must not leave',
      relayed: null,
    });
  });

  it('keeps mail the relay refused in pending.json and relays it after a restart', async () => {
    const port = await freePort();
    const first = await catcher({ relay: { url: `smtp://127.0.0.1:${port}` }, retryMs: 60_000 });
    const failed = once(first, 'relay-failed');
    await send(first.port, {
      from: 'app@example.com',
      to: 'tester@example.org',
      subject: 'later',
      text: 'z',
    });
    const [id, error] = (await failed) as [string, string];
    expect(error).toMatch(/ECONNREFUSED|connect/i);
    await first.stop();

    const pendingFile = path.join(tmp.dir, 'mail', 'branch1', 'pending.json');
    expect(JSON.parse(readFileSync(pendingFile, 'utf8'))).toEqual([
      expect.objectContaining({ id, attempts: 1, lastError: error }),
    ]);
    expect((await listCaughtMail(tmp.dir, 'branch1'))[0]).toMatchObject({ id, relayed: false });
    expect(first.log.lines.filter((l) => l.msg === 'mail relay failed; will retry')).toHaveLength(
      1,
    );

    const relay = await relayServer(port);
    const arrived = relay.next();
    const second = await catcher({ relay: { url: `smtp://127.0.0.1:${port}` }, retryMs: 60_000 });
    await second.flush();
    expect((await arrived).raw).toContain('Subject: later');
    expect((await listCaughtMail(tmp.dir, 'branch1'))[0]).toMatchObject({ id, relayed: true });
    expect(JSON.parse(readFileSync(pendingFile, 'utf8'))).toEqual([]);
  });

  it('keeps only the newest `keep` messages', async () => {
    const c = await catcher({ keep: 3 });
    for (let i = 1; i <= 5; i++) {
      const caught = once(c, 'caught');
      await send(c.port, {
        from: 'app@example.com',
        to: 'x@example.org',
        subject: `message ${i}`,
        text: String(i),
      });
      await caught;
    }
    expect((await listCaughtMail(tmp.dir, 'branch1')).map((m) => m.subject)).toEqual([
      'message 5',
      'message 4',
      'message 3',
    ]);
    expect(
      readdirSync(path.join(tmp.dir, 'mail', 'branch1')).filter((n) => n.endsWith('.eml')),
    ).toHaveLength(3);
  });

  it('says clearly when its port is taken', async () => {
    const c = await catcher();
    const log = memoryLogger();
    const clash = new MailCatcher({
      branch: 'other',
      port: c.port,
      host: '127.0.0.1',
      stateDir: tmp.dir,
      keep: 10,
      relay: null,
      log,
    });
    const err = await clash.start().then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe('EEXISTS');
    expect(err?.message).toContain(
      `branch other cannot listen on 127.0.0.1:${c.port}: something else listens there`,
    );
    expect(err?.message).toContain('smtp_port');
  });
});
