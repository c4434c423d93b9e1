import { execFileSync } from 'node:child_process';
import { runCli } from '../test/helpers/cli.js';
import type { CountingPoller } from './inprocess.js';
import { median, timed } from './proc.js';

/**
 * Wall time of one `stagepost poll` against asking every repository once with
 * raw git/svn, sequentially, alternated in the same run; the CLI's start-up
 * (`stagepost --help`; `stagepost check`, which also loads ci.yaml) and the
 * in-process Poller timed apart.
 */
export interface WallFigures { runs: number; rawMs: number; cliMs: number; helpMs: number; checkMs: number; inProcessMs: number }

export type RawQuery = [file: string, args: string[]];

export async function measureWall(configFile: string, raw: RawQuery[], inProcess: CountingPoller, runs: number): Promise<WallFigures> {
  const samples = { raw: [] as number[], cli: [] as number[], help: [] as number[], check: [] as number[], inProcess: [] as number[] };
  const cli = async (args: string[]) => {
    const r = await runCli(args, { env: { STAGEPOST_LOG_LEVEL: 'warn' } });
    if (r.code !== 0) throw new Error(`bench: stagepost ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-2000)}`);
  };
  for (let i = 0; i < runs; i++) {
    samples.raw.push(await timed(() => { for (const [file, args] of raw) execFileSync(file, args, { stdio: 'ignore' }); }));
    samples.cli.push(await timed(() => cli(['poll', '--config', configFile])));
    samples.help.push(await timed(() => cli(['--help'])));
    // Start-up including reading and validating ci.yaml, but no remote query.
    samples.check.push(await timed(() => cli(['check', '--config', configFile])));
    samples.inProcess.push(await timed(() => inProcess.poller.pollNow()));
  }
  return { runs, rawMs: median(samples.raw), cliMs: median(samples.cli), helpMs: median(samples.help), checkMs: median(samples.check), inProcessMs: median(samples.inProcess) };
}
