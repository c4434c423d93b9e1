import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { memoryLogger } from '../../src/log.js';
import type { PluginContext } from '../../src/plugin-api.js';
import { Redactor } from '../../src/util/redact.js';
import { run } from '../../src/util/exec.js';
import { sharedSshWords } from '../../src/util/ssh.js';

/** Shared by the git and svn plugin tests: a plugin context and a network server. */
export function pluginContext(stateDir: string): PluginContext {
  const redactor = new Redactor();
  return {
    log: memoryLogger(),
    stateDir,
    redact: (t) => redactor.redact(t),
    run,
    sshWords: () => sharedSshWords(stateDir),
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A server process in its own group, resolved once its port accepts connections. */
export async function startServer(
  file: string,
  args: string[],
  port: number,
): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(file, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`${file} exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${file} did not accept on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stop };
}

/** Whether a process still exists (a zombie counts as gone once reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
