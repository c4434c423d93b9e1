import { execFileSync } from 'node:child_process';
import { runCli } from '../test/helpers/cli.js';
import type { CountingPoller } from './inprocess.js';
import { median, timed } from './proc.js';

/**
 * Wall time of one `stagepost poll` against asking every repository once with
 * raw git/svn, sequentially, alternated in the same run. The CLI reports its
 * own phases in `--json` (`timing.startupMs`: node, imports, ci.yaml, state
 * and plugins until the first query; `timing.pollMs`: first query to last
 * answer), so its start-up is measured apart from the poll; the in-process
 * Poller (the daemon's cycle) and `stagepost --help` are timed too.
 */
export interface WallFigures {
  runs: number;
  rawMs: number;
  cliMs: number;
  cliStartupMs: number;
  cliPollMs: number;
  helpMs: number;
  inProcessMs: number;
}

export type RawQuery = [file: string, args: string[]];

export async function measureWall(
  configFile: string,
  raw: RawQuery[],
  inProcess: CountingPoller,
  runs: number,
): Promise<WallFigures> {
  const samples = {
    raw: [] as number[],
    cli: [] as number[],
    cliStartup: [] as number[],
    cliPoll: [] as number[],
    help: [] as number[],
    inProcess: [] as number[],
  };
  const cli = async (args: string[]) => {
    const r = await runCli(args, { env: { STAGEPOST_LOG_LEVEL: 'warn' } });
    if (r.code !== 0)
      throw new Error(
        `bench: stagepost ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-2000)}`,
      );
    return r.stdout;
  };
  for (let i = 0; i < runs; i++) {
    samples.raw.push(
      await timed(() => {
        for (const [file, args] of raw) execFileSync(file, args, { stdio: 'ignore' });
      }),
    );
    let stdout = '';
    samples.cli.push(
      await timed(async () => {
        stdout = await cli(['poll', '--json', '--config', configFile]);
      }),
    );
    const { timing } = JSON.parse(stdout) as { timing: { startupMs: number; pollMs: number } };
    samples.cliStartup.push(timing.startupMs);
    samples.cliPoll.push(timing.pollMs);
    samples.help.push(await timed(() => cli(['--help'])));
    samples.inProcess.push(await timed(() => inProcess.poller.pollNow()));
  }
  return {
    runs,
    rawMs: median(samples.raw),
    cliMs: median(samples.cli),
    cliStartupMs: median(samples.cliStartup),
    cliPollMs: median(samples.cliPoll),
    helpMs: median(samples.help),
    inProcessMs: median(samples.inProcess),
  };
}
