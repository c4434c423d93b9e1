/**
 * Issue 16.8: the mail catcher streams messages to disk. Under a flood of
 * real SMTP clients (nodemailer, in another process) sending large mail at
 * once, the catcher's memory stays flat; a message over its size is refused
 * with 552 and leaves nothing behind; clients beyond maxClients get 421.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { memoryLogger } from '../../src/log.js';
import { MailCatcher, type MailCatcherOptions } from '../../src/site/mail-catcher.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';

const SENDER = path.join(ROOT, 'test/fixtures/mail-flood-sender.mjs');

let t: ReturnType<typeof tempDir>;
let catcher: MailCatcher | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await catcher?.stop();
  catcher = null;
  t.cleanup();
});

async function start(options: Partial<MailCatcherOptions> = {}): Promise<MailCatcher> {
  catcher = new MailCatcher({
    branch: 'staging',
    port: await freePort(),
    stateDir: path.join(t.dir, 'state'),
    keep: 100,
    log: memoryLogger(),
    ...options,
  });
  await catcher.start();
  return catcher;
}

function send(port: number, count: number, mb: number): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [SENDER, String(port), String(count), String(mb)],
      { timeout: 120_000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${err.message}\n${stderr}`))
          : resolve(JSON.parse(stdout) as string[]),
    ),
  );
}

const mailFiles = () => readdirSync(path.join(t.dir, 'state/mail', 'staging')).sort();
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

test('a flood of large messages is written to disk, memory stays flat', async () => {
  const c = await start({ maxClients: 20 });
  const COUNT = 16;
  const MB = 32;
  // What the catcher holds, not garbage a busy machine has not collected yet:
  // each sample (four a second: a full collection is not free) collects first.
  gc();
  const base = used();
  let peak = 0;
  const sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, used() - base);
  }, 250);
  try {
    const results = await send(c.port, COUNT, MB);
    expect(results).toEqual(Array(COUNT).fill('ok'));
  } finally {
    clearInterval(sampler);
  }
  const files = mailFiles();
  const emls = files.filter((f) => f.endsWith('.eml'));
  expect(emls).toHaveLength(COUNT);
  for (const f of emls)
    expect(statSync(path.join(t.dir, 'state/mail/staging', f)).size).toBeGreaterThan(MB << 20);
  expect(files.filter((f) => f.endsWith('.incoming'))).toEqual([]);
  // 512 MB went through; before, each message was held whole until its end.
  if (process.env.SHOW_PEAK) process.stderr.write(`peak growth ${peak >> 20} MB\n`);
  expect(peak).toBeLessThan(96 << 20);
}, 180_000);

test('a message over maxBytes is refused with 552 and leaves no file', async () => {
  const c = await start({ maxBytes: 1 << 20 });
  expect(await send(c.port, 2, 2)).toEqual(['552', '552']);
  expect(mailFiles()).toEqual([]);
  expect(await send(c.port, 1, 0.5)).toEqual(['ok']);
});

test('clients beyond maxClients are turned away with 421', async () => {
  const c = await start({ maxClients: 2 });
  const greet = () =>
    new Promise<{ socket: net.Socket; line: string }>((resolve, reject) => {
      const socket = net.connect(c.port, '127.0.0.1');
      socket.once('data', (d) => resolve({ socket, line: d.toString() }));
      socket.once('error', reject);
    });
  const first = await greet();
  const second = await greet();
  const third = await greet();
  try {
    expect(first.line).toMatch(/^220 /);
    expect(second.line).toMatch(/^220 /);
    expect(third.line).toMatch(/^421 /);
  } finally {
    for (const s of [first, second, third]) s.socket.destroy();
  }
});
