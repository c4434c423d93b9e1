/**
 * What a daemon really holds, read through the V8 inspector of the child
 * (started with `--inspect=127.0.0.1:0`): a full collection first, then the
 * heap in use. RSS alone cannot tell a leak from garbage not yet collected,
 * or from a heap V8 chose to keep grown.
 */
import type { DaemonProcess } from './cli.js';

export const INSPECT_ARGS = ['--inspect=127.0.0.1:0'];

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: unknown) => void; reject: (e: Error) => void }
  >();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.addEventListener('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector closed'));
      this.pending.clear();
    });
  }

  /** Connect to the inspector the daemon announced on stderr. */
  static async attach(daemon: DaemonProcess): Promise<Inspector> {
    const [line] = await daemon.waitFor((e) => /Debugger listening on ws:/.test(e.msg), {
      what: 'the inspector address (start the daemon with INSPECT_ARGS)',
    });
    const url = /ws:\/\/\S+/.exec(line.msg)![0];
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
    return new Inspector(socket);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Bytes of JavaScript heap in use after a full collection. */
  async liveHeapBytes(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    const usage = (await this.call('Runtime.getHeapUsage')) as { usedSize: number };
    return usage.usedSize;
  }

  close(): void {
    this.socket.close();
  }
}
