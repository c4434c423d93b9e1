import path from 'node:path';
import { runCli, type DaemonProcess } from '../test/helpers/cli.js';
import { writeBuiltState, writeConfig, type BenchBranch } from './fixtures.js';
import type { CountingPoller } from './inprocess.js';
import { startDaemon, stopDaemon } from './daemon.js';
import type { Shim } from './shim.js';
import { sleep } from './proc.js';

/** Remote queries per poll cycle, counted three ways: plugin onRun, CLI under a PATH shim, daemon under a PATH shim. */
export async function inProcessPerCycle(counting: CountingPoller, cycles: number): Promise<number> {
  const before = counting.children.length;
  for (let i = 0; i < cycles; i++) await counting.poller.pollNow();
  return (counting.children.length - before) / cycles;
}

export async function cliChildren(configFile: string, shim: Shim): Promise<string[]> {
  const before = shim.calls().length;
  const r = await runCli(['poll', '--config', configFile], {
    env: { ...shim.env, STAGEPOST_LOG_LEVEL: 'warn' },
  });
  if (r.code !== 0)
    throw new Error(`bench: stagepost poll exited ${r.code}\n${r.stderr.slice(-2000)}`);
  return shim.calls().slice(before);
}

export interface DaemonChildren {
  calls: string[];
  cycles: number;
  buildsStarted: number;
}

/** Children of a built, idle daemon during a window, after its first cycle. */
export async function daemonChildren(
  dir: string,
  branches: BenchBranch[],
  shim: Shim,
  o: { intervalMs: number; windowMs: number },
): Promise<DaemonChildren> {
  const file = writeConfig(dir, branches, { interval: `${o.intervalMs}ms` });
  await writeBuiltState(path.dirname(file), branches);
  let daemon: DaemonProcess | null = null;
  try {
    daemon = await startDaemon(file, shim.env);
    await sleep(o.intervalMs * 1.5);
    const before = shim.calls().length;
    await sleep(o.windowMs);
    return {
      calls: shim.calls().slice(before),
      cycles: o.windowMs / o.intervalMs,
      buildsStarted: daemon.count((e) => e.msg === 'build started'),
    };
  } finally {
    if (daemon) await stopDaemon(daemon);
  }
}
