import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { memoryLogger } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';
import { notifierConfig, parseMail, startSmtp } from './helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');

it('a process killed with -9 while a mail is on the wire leaves it in the outbox; the next start delivers it once', async () => {
  const tmp = tempDir();
  const stateDir = path.join(tmp.dir, 'state');
  // An SMTP server that accepts the connection and never greets: the delivery hangs mid-way.
  const sockets: Socket[] = [];
  let connected!: () => void;
  const onConnect = new Promise<void>((resolve) => {
    connected = resolve;
  });
  const silent = createServer((s) => {
    sockets.push(s);
    connected();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(HERE, 'outbox-child.ts'), stateDir, String(port)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  try {
    await Promise.race([
      onConnect,
      exited.then((how) => {
        throw new Error(`child ended (${how}) before delivering: ${stdout}`);
      }),
    ]);
    const outbox = readdirSync(path.join(stateDir, 'outbox')).filter((f) => f.endsWith('.json'));
    expect(outbox).toHaveLength(1);
    expect(stdout).not.toContain('dispatch returned');
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  } finally {
    clearTimeout(guard);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }

  const smtp = await startSmtp(port);
  const dispatcher = new NotifyDispatcher({ stateDir, log: memoryLogger(), redact: (t) => t });
  try {
    await dispatcher.setNotifiers(
      [
        notifierConfig('email', ['failure'], {
          transport: `smtp://127.0.0.1:${port}`,
          from: 'staging@example.com',
          to: 'ops@example.com',
        }),
      ],
      new Map(),
    );
    await dispatcher.start();
    await smtp.waitFor(1);
    await dispatcher.flush();
    expect(smtp.mails).toHaveLength(1);
    expect(parseMail(smtp.mails[0].raw).headers.subject).toBe(
      '[stagepost] branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812',
    );
    expect(readdirSync(path.join(stateDir, 'outbox')).filter((f) => f.endsWith('.json'))).toEqual(
      [],
    );
  } finally {
    await dispatcher.close();
    await smtp.close();
    tmp.cleanup();
  }
});
