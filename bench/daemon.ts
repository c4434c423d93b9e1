import { DaemonProcess } from '../test/helpers/cli.js';
import { unitNodeFlags } from '../test/helpers/unit.js';

/** node flags of ExecStart in config/stagepost.service: the bench measures the daemon as installed. */
export const DAEMON_NODE_FLAGS = unitNodeFlags();

/** A `stagepost run` child for the bench, and the two HTTP calls it makes to it. */
export async function startDaemon(
  configFile: string,
  env: NodeJS.ProcessEnv = {},
): Promise<DaemonProcess> {
  // Info level: the at-rest figures must not pay for a debug line per query.
  // Some V8 flags (--no-opt) are refused in NODE_OPTIONS: they go on node's command line, as in the unit.
  const daemon = new DaemonProcess(
    configFile,
    { STAGEPOST_LOG_LEVEL: 'info', NODE_OPTIONS: '', ...env },
    DAEMON_NODE_FLAGS,
  );
  await daemon.waitFor((e) => e.msg === 'stagepost started', {
    timeoutMs: 60_000,
    what: 'the daemon to start',
  });
  return daemon;
}

export async function stopDaemon(daemon: DaemonProcess): Promise<void> {
  const code = await daemon.stop();
  if (code !== 0) throw new Error(`bench: daemon exited ${code}\n${daemon.stderr.slice(-2000)}`);
}

/** stagepost_remote_queries_total summed over vcs labels. */
export async function remoteQueries(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('stagepost_remote_queries_total')) sum += Number(line.split(' ').pop());
  return sum;
}

/** The commit hook: POST /api/poll with the token. */
export async function postPoll(port: number, token: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/api/poll`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200)
    throw new Error(`bench: POST /api/poll answered ${res.status}: ${await res.text()}`);
}
