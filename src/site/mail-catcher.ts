import { EventEmitter } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { errorMessage, StagepostError } from '../errors.js';
import type { Logger } from '../log.js';
import { headerValue } from './mail-headers.js';
import { MailStore, newMailId, type StoredMail } from './mail-store.js';

export interface MailCatcherOptions {
  branch: string;
  port: number;
  host?: string;
  stateDir: string;
  /** Newest messages kept; older ones are deleted. */
  keep: number;
  relay?: { url: string } | null;
  log: Logger;
  /** First retry delay of a failed relay; doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Largest message accepted (advertised as SMTP SIZE; larger ones get 552). */
  maxBytes?: number;
  /** Clients connected at once; more are turned away with 421. */
  maxClients?: number;
}

const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
const DEFAULT_MAX_CLIENTS = 20;
/** The subject is read from the first bytes of a message, not the whole of it. */
const HEAD_BYTES = 64 * 1024;

const RELAY_TIMEOUTS = {
  connectionTimeout: 15_000,
  greetingTimeout: 15_000,
  socketTimeout: 60_000,
  dnsTimeout: 15_000,
};

export interface MailCatcherEvents {
  caught: [StoredMail];
  relayed: [string];
  'relay-failed': [string, string];
}

/**
 * A branch's mail catcher: an SMTP server on loopback that accepts any mail
 * (no TLS; AUTH accepted whatever the password, so an app configured with
 * credentials still works) and keeps it under state_dir. Staging runs on
 * production data, so nothing leaves unless the branch has `mailout: true`:
 * then each message is also relayed, and one that cannot be relayed waits in
 * `pending.json` and is retried with backoff, across restarts.
 */
export class MailCatcher extends EventEmitter<MailCatcherEvents> {
  private readonly store: MailStore;
  private server: SMTPServer | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** One chain for every store write, so pruning and pending updates never interleave. */
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private relaying: Promise<unknown> | null = null;
  /** The relay connection in use, closed by stop() so shutdown does not wait for a slow relay. */
  private transport: { close(): void } | null = null;

  constructor(private readonly opts: MailCatcherOptions) {
    super();
    this.store = new MailStore(opts.stateDir, opts.branch);
  }

  get port(): number {
    const address = this.server?.server.address() as AddressInfo | null | undefined;
    return address?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.store.removeIncoming();
    const server = new SMTPServer({
      banner: `stagepost mail catcher of branch ${this.opts.branch}: nothing leaves${this.opts.relay ? ' except through the relay' : ''}`,
      disabledCommands: ['STARTTLS'],
      hideSTARTTLS: true,
      authOptional: true,
      allowInsecureAuth: true,
      onAuth: (_auth, _session, callback) => callback(null, { user: 'any' }),
      size: this.opts.maxBytes ?? DEFAULT_MAX_BYTES,
      maxClients: this.opts.maxClients ?? DEFAULT_MAX_CLIENTS,
      closeTimeout: 1000,
      logger: false,
      onData: (stream, session, callback) => void this.receive(stream, session, callback),
    });
    server.on('error', (err) =>
      this.opts.log.warn({ error: err }, 'mail catcher connection error'),
    );
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new StagepostError(
                'EEXISTS',
                `the mail catcher of branch ${this.opts.branch} cannot listen on ${this.opts.host ?? '127.0.0.1'}:${this.opts.port}: something else listens there — stop it, or give the branch another smtp_port in ci.yaml`,
                { cause: err, details: { errno: err.code } },
              )
            : err,
        );
      server.server.once('error', onError);
      server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => {
        server.server.off('error', onError);
        resolve();
      });
    });
    this.server = server;
    this.opts.log.info(
      { port: this.port, relay: this.opts.relay ? this.opts.relay.url : null },
      'mail catcher listening',
    );
    // Mail left pending by an earlier run goes out now that we are back.
    if (this.opts.relay) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const server = this.server;
    this.server = null;
    this.transport?.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    while (this.relaying) await this.relaying;
    await this.chain.catch(() => undefined);
  }

  /** Try every pending relay now (the retry timer does this on its own). */
  flush(): Promise<void> {
    return this.relayPending(true);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * A message goes straight to a file as it arrives: a flood of large mails
   * costs disk (bounded by SIZE and maxClients), not memory. Only its first
   * bytes are kept, for the subject.
   */
  private async receive(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null) => void,
  ): Promise<void> {
    const id = newMailId();
    const incoming = this.store.incoming(id);
    const max = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (headBytes < HEAD_BYTES) {
          head.push(chunk);
          headBytes += chunk.length;
        }
        // Past the limit the rest is read (SMTP needs it drained) but not written.
        done(null, size > max ? undefined : chunk);
      },
    });
    try {
      await mkdir(this.store.dir, { recursive: true });
      await pipeline(stream, count, createWriteStream(incoming, { mode: 0o600, flush: true }));
    } catch (err) {
      await rm(incoming, { force: true });
      stream.resume();
      this.opts.log.error({ error: err }, 'mail catcher could not store a message');
      callback(
        Object.assign(new Error('mail catcher could not store the message'), {
          responseCode: 451,
        }),
      );
      return;
    }
    if (stream.sizeExceeded || size > max) {
      await rm(incoming, { force: true });
      this.opts.log.warn({ size, maxBytes: max }, 'mail catcher refused a message over its size');
      callback(
        Object.assign(new Error(`message too large for the mail catcher (over ${max} bytes)`), {
          responseCode: 552,
        }),
      );
      return;
    }
    const envelope = {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      to: session.envelope.rcptTo.map((r) => r.address),
    };
    const meta: StoredMail = {
      id,
      receivedAt: new Date().toISOString(),
      from: envelope.from,
      to: envelope.to,
      subject: headerValue(Buffer.concat(head).subarray(0, HEAD_BYTES), 'subject'),
      size,
      relayed: this.opts.relay ? false : null,
      envelope,
    };
    this.serial(async () => {
      await this.store.commit(incoming, meta);
      if (this.opts.relay) {
        const pending = await this.store.readPending();
        pending.push({ id: meta.id, attempts: 0, nextAttemptAt: meta.receivedAt });
        await this.store.writePending(pending);
      }
      await this.pruneOld();
    }).then(
      () => {
        callback(null);
        this.opts.log.info(
          { id: meta.id, from: meta.from, to: meta.to, subject: meta.subject, size: meta.size },
          'mail caught',
        );
        this.emit('caught', meta);
        if (this.opts.relay) this.schedule(0);
      },
      async (err: unknown) => {
        await rm(incoming, { force: true });
        this.opts.log.error({ error: err }, 'mail catcher could not store a message');
        callback(
          Object.assign(new Error('mail catcher could not store the message'), {
            responseCode: 451,
          }),
        );
      },
    );
  }

  private async pruneOld(): Promise<void> {
    const removed = await this.store.prune(this.opts.keep);
    if (removed.length === 0) return;
    const pending = await this.store.readPending();
    const left = pending.filter((p) => !removed.includes(p.id));
    if (left.length !== pending.length) {
      await this.store.writePending(left);
      this.opts.log.warn(
        { dropped: pending.length - left.length },
        'mail catcher dropped unrelayed mail beyond its keep limit',
      );
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped || !this.opts.relay) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.relayPending(false);
    }, delayMs);
    this.timer.unref();
  }

  /** One relay run at a time; a second caller waits for it and then runs its own. */
  private async relayPending(all: boolean): Promise<void> {
    while (this.relaying) await this.relaying;
    const run = this.relayDue(all).catch((err: unknown) =>
      this.opts.log.error({ error: err }, 'mail relay run failed'),
    );
    this.relaying = run;
    try {
      await run;
    } finally {
      this.relaying = null;
    }
    const pending = await this.store.readPending();
    if (pending.length > 0)
      this.schedule(
        Math.max(0, Math.min(...pending.map((p) => Date.parse(p.nextAttemptAt))) - Date.now()),
      );
  }

  // The store is touched only inside `serial`; the network send is outside it,
  // so a slow relay never holds up catching new mail.
  private async relayDue(all: boolean): Promise<void> {
    const relay = this.opts.relay;
    if (!relay) return;
    const due = await this.serial(async () =>
      (await this.store.readPending()).filter(
        (p) => all || Date.parse(p.nextAttemptAt) <= Date.now(),
      ),
    );
    for (const entry of due) {
      if (this.stopped) return;
      const meta = await this.store.read(entry.id);
      let failure: string | null = null;
      if (meta) {
        try {
          await this.send(relay.url, meta, await this.store.rawPath(entry.id));
        } catch (err) {
          failure = errorMessage(err);
        }
      }
      await this.serial(async () => {
        const pending = await this.store.readPending();
        const at = pending.findIndex((p) => p.id === entry.id);
        if (at === -1) return;
        if (!meta || failure === null) {
          pending.splice(at, 1);
          if (meta) await this.store.update({ ...meta, relayed: true });
        } else {
          const attempts = pending[at].attempts + 1;
          const delay = Math.min(
            (this.opts.retryMs ?? 30_000) * 2 ** (attempts - 1),
            this.opts.maxRetryMs ?? 3_600_000,
          );
          pending[at] = {
            id: entry.id,
            attempts,
            nextAttemptAt: new Date(Date.now() + delay).toISOString(),
            lastError: failure,
          };
          // Loud on the first failure only: a relay that is down stays down for a while.
          if (attempts === 1)
            this.opts.log.warn({ id: entry.id, error: failure }, 'mail relay failed; will retry');
        }
        await this.store.writePending(pending);
      });
      if (!meta) continue;
      if (failure === null) {
        this.opts.log.info({ id: entry.id, to: meta.envelope.to }, 'mail relayed');
        this.emit('relayed', entry.id);
      } else {
        this.emit('relay-failed', entry.id, failure);
      }
    }
  }

  /** The message is streamed from its file: a relay does not hold it in memory either. */
  private async send(url: string, meta: StoredMail, file: string): Promise<void> {
    const transport = nodemailer.createTransport({ url, ...RELAY_TIMEOUTS } as Parameters<
      typeof nodemailer.createTransport
    >[0]);
    this.transport = transport;
    try {
      await transport.sendMail({ envelope: meta.envelope, raw: { path: file } });
    } finally {
      this.transport = null;
      transport.close();
    }
  }
}
