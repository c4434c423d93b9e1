import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';

// Node has no unix datagram sockets; perl (perl-base, on every Debian system)
// binds a real one and prints each datagram on a line, in hex.
const LISTENER = `
use Socket; $| = 1;
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
print "listening\\n";
while (defined recv($s, my $buf, 65536, 0)) { print unpack("H*", $buf), "\\n"; }
`;

/** A listening $NOTIFY_SOCKET, as systemd gives a Type=notify service: the messages it got. */
export class NotifySocket {
  readonly path: string;
  readonly messages: string[] = [];
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];
  private stderr = '';

  private constructor(dir: string) {
    this.path = path.join(dir, 'notify.sock');
    this.child = spawn('perl', ['-e', LISTENER, this.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines)
        this.messages.push(l === 'listening' ? l : Buffer.from(l, 'hex').toString('utf8'));
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.on('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(dir: string): Promise<NotifySocket> {
    const socket = new NotifySocket(dir);
    await socket.waitFor((m) => m === 'listening', 'the listener');
    socket.messages.shift();
    return socket;
  }

  /** Messages with the assignment `line` (e.g. READY=1) among their lines. */
  having(line: string): string[] {
    return this.messages.filter((m) => m.split('\n').includes(line));
  }

  async waitFor(
    match: (message: string) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) throw new Error(`notify listener exited: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no ${what} on ${this.path}: got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Every datagram sent before now has been read: a unix datagram socket
   * keeps order, so once our own marker comes back all earlier ones are in.
   */
  async flush(): Promise<void> {
    const send = spawnSync(
      'perl',
      [
        '-MSocket',
        '-e',
        'socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; send($s, "FLUSH=1", 0, pack_sockaddr_un($ARGV[0])) or die "send: $!"',
        this.path,
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
    if (send.status !== 0) throw new Error(`cannot send to ${this.path}: ${send.stderr}`);
    await this.waitFor((m) => m === 'FLUSH=1', 'the flush marker');
    this.messages.splice(this.messages.indexOf('FLUSH=1'), 1);
  }

  close(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
