import { promises as fs } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Mailbox } from './addresses.js';

/**
 * Where mail goes: an SMTP server (`smtp://host:port`, `smtps://user:pass@host:465`,
 * nodemailer's URL form, so `?tls.rejectUnauthorized=false` works) or a
 * directory of `.eml` files (`dir:./mail`, relative to ci.yaml).
 */
export type TransportSpec = { kind: 'smtp'; url: string } | { kind: 'dir'; dir: string };

/** Secrets are not part of it: the transport URL is read from the options at delivery. */
export interface PreparedMail {
  messageId: string;
  date: string;
  from: Mailbox;
  to: Mailbox[];
  subject: string;
  text: string;
  html: string;
  headers: Record<string, string>;
}

const SMTP_TIMEOUTS = {
  connectionTimeout: 15_000,
  greetingTimeout: 15_000,
  socketTimeout: 60_000,
  dnsTimeout: 15_000,
};

export function parseTransport(value: unknown, baseDir: string): TransportSpec | string {
  const text = value ?? 'smtp://localhost:25';
  if (typeof text !== 'string')
    return 'give a string: smtp://host:port, smtps://user:pass@host:465 or dir:./mail';
  if (/^smtps?:\/\/[^\s]+$/i.test(text)) return { kind: 'smtp', url: text };
  if (/^dir:./.test(text)) return { kind: 'dir', dir: path.resolve(baseDir, text.slice(4)) };
  return `unknown transport "${text.replace(/:\/\/[^@/\s]*@/, '://…@')}" — use smtp://host:port, smtps://user:pass@host:465 or dir:./mail`;
}

export interface MailSender {
  send(mail: PreparedMail): Promise<void>;
  close(): void;
}

export function createSender(spec: TransportSpec): MailSender {
  if (spec.kind === 'dir') {
    const composer = nodemailer.createTransport({
      streamTransport: true,
      buffer: true,
      newline: 'unix',
    });
    return {
      async send(mail) {
        const info = await composer.sendMail(mailOptions(mail));
        await fs.mkdir(spec.dir, { recursive: true });
        // Named after the Message-ID, so a retry rewrites the same file instead of adding one.
        const file = path.join(
          spec.dir,
          `${mail.date.replace(/[:.]/g, '-')}-${mail.messageId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40)}.eml`,
        );
        const tmp = `${file}.tmp`;
        await fs.writeFile(tmp, info.message as Buffer);
        await fs.rename(tmp, file);
      },
      close() {},
    };
  }
  const transport = nodemailer.createTransport({ url: spec.url, ...SMTP_TIMEOUTS } as Parameters<
    typeof nodemailer.createTransport
  >[0]);
  return {
    async send(mail) {
      await transport.sendMail(mailOptions(mail));
    },
    close() {
      transport.close();
    },
  };
}

function mailOptions(mail: PreparedMail) {
  return {
    messageId: mail.messageId,
    date: new Date(mail.date),
    from: mail.from,
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    headers: mail.headers,
  };
}
