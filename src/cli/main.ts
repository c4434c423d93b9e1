import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { StagepostError, exitCodeFor, errorMessage } from '../errors.js';
import { redactor } from '../util/redact.js';
import { forTerminal } from './output.js';
import { endQuietlyWhenStdoutCloses } from './closed-stdout.js';

/**
 * The command line. The only place that decides exit statuses: 0 success,
 * 1 a build, check or remote failed, 2 bad config or usage.
 */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('stagepost')
    .description('Staging sites for every branch: poll git and svn cheaply, build only on change.')
    .addOption(
      new Option(
        '-c, --config <path>',
        'ci.yaml to use (default: $STAGEPOST_CONFIG, else ./ci.yaml)',
      ),
    )
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  // Each command's modules are loaded when it runs, so `status` does not pay
  // for the daemon's HTTP server and `--help` starts fast.
  const commands = {
    run: () => import('./commands/run.js'),
    check: () => import('./commands/check.js'),
    poll: () => import('./commands/poll.js'),
    update: () => import('./commands/update.js'),
    status: () => import('./commands/status.js'),
    job: () => import('./commands/job.js'),
    mail: () => import('./commands/mail.js'),
    switch: () => import('./commands/switch.js'),
    proxyConfig: () => import('./commands/proxy-config.js'),
    teardown: () => import('./commands/teardown.js'),
    sites: () => import('./commands/sites.js'),
    cluster: () => import('./commands/cluster.js'),
  };
  const cfg = (cmd: Command) => ({ ...program.opts(), ...cmd.opts() });
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      code = await fn(...args);
    };

  program
    .command('run')
    .description('the daemon: poll, build, notify, run jobs, serve http')
    .option(
      '--http-port <port>',
      "listen on this port instead of ci.yaml's http port (hosts of a cluster sharing one machine)",
      (v: string) => {
        const port = Number(v);
        if (!Number.isInteger(port) || port < 1 || port > 65535)
          throw new InvalidArgumentError('a port is a whole number from 1 to 65535');
        return port;
      },
    )
    .action(
      act(async (o: { httpPort?: number }, cmd: Command) =>
        (await commands.run()).runCommand({ ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('check')
    .description('validate ci.yaml')
    .option('--remote', 'also ask every remote once')
    .action(
      act(async (o: { remote?: boolean }, cmd: Command) =>
        (await commands.check()).checkCommand({ ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('poll')
    .argument('[branches...]')
    .option('--json', 'print JSON')
    .description('ask the remotes once; builds nothing')
    .action(
      act(async (b: string[], o: { json?: boolean }, cmd: Command) =>
        (await commands.poll()).pollCommand(b, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('update')
    .argument('[branches...]')
    .option('--all', 'every branch')
    .option('--force', 'build even when nothing changed')
    .description('build now, in the foreground')
    .action(
      act(async (b: string[], o: { all?: boolean; force?: boolean }, cmd: Command) =>
        (await commands.update()).updateCommand(b, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('status')
    .option('--json', 'print JSON')
    .description('state of every branch')
    .action(
      act(async (o: { json?: boolean }, cmd: Command) =>
        (await commands.status()).statusCommand({ ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('log')
    .argument('<branch>')
    .argument('[build]')
    .option('--job <name>', "a run of this job instead (BUILD is the job's run number)")
    .description("print a build's log (the last by default)")
    .action(
      act(async (b: string, id: string | undefined, o: { job?: string }, cmd: Command) =>
        (await commands.status()).logCommand(b, id, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('history')
    .argument('<site>')
    .option('--job <name>', 'the runs of this job instead of the builds')
    .option('--json', 'print JSON')
    .description('past builds (or job runs) with their durations')
    .action(
      act(async (b: string, o: { job?: string; json?: boolean }, cmd: Command) =>
        (await import('./commands/history.js')).historyCommand(b, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('create')
    .argument('<branch>')
    .description('make a new branch site: checkout, create steps, first build')
    .action(
      act(async (b: string, _o: object, cmd: Command) =>
        (await commands.update()).createCommand(b, cfg(cmd)),
      ),
    );
  program
    .command('job')
    .argument('<name>')
    .option('--branch <branch>', 'only this branch')
    .description('run a job now')
    .action(
      act(async (n: string, o: { branch?: string }, cmd: Command) =>
        (await commands.job()).jobCommand(n, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('mail')
    .argument('<branch>')
    .argument('[id]')
    .option('--json', 'print JSON')
    .description("mail caught by the branch's catcher")
    .action(
      act(async (b: string, id: string | undefined, o: { json?: boolean }, cmd: Command) =>
        (await commands.mail()).mailCommand(b, id, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('switch')
    .argument('<branch>')
    .argument('<ref>')
    .option('--source <name>', 'which source, when the branch has several')
    .description('point a branch site at another git ref or svn URL')
    .action(
      act(async (b: string, r: string, o: { source?: string }, cmd: Command) =>
        (await commands.switch()).switchCommand(b, r, { ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('teardown')
    .argument('<branch>')
    .description("run a branch's teardown steps now (stop its server, remove its site)")
    .action(
      act(async (b: string, _o: object, cmd: Command) =>
        (await commands.teardown()).teardownCommand(b, cfg(cmd)),
      ),
    );
  program
    .command('proxy-config')
    .option('--listen <addr:port>', 'listen address (default 443, 80 with --http)')
    .option('--http', 'plain http, no certificate (behind another TLS terminator)')
    .description('print the nginx server block')
    .action(
      act(async (o: { listen?: string; http?: boolean }, cmd: Command) =>
        (await commands.proxyConfig()).proxyConfigCommand({ ...cfg(cmd), ...o }),
      ),
    );
  for (const [name, pin] of [
    ['pin', true],
    ['unpin', false],
  ] as const)
    program
      .command(name)
      .argument('<site>')
      .description(
        pin
          ? "keep a pattern's site: never retired or bumped (counts against slots)"
          : 'let a pinned site be retired again',
      )
      .action(
        act(async (site: string, _o: object, cmd: Command) =>
          (await commands.sites()).pinCommand(site, pin, cfg(cmd)),
        ),
      );
  program
    .command('mail-config')
    .description("print a Postfix transport map: each customer's mail-in to its branch's catcher")
    .action(
      act(async (_o: object, cmd: Command) => (await commands.sites()).mailConfigCommand(cfg(cmd))),
    );
  program
    .command('retire')
    .option('--confirm', 'let the retirements the half-at-once guard holds proceed')
    .description("confirm held retirements of a pattern's sites")
    .action(
      act(async (o: { confirm?: boolean }, cmd: Command) =>
        (await commands.sites()).retireCommand({ ...cfg(cmd), ...o }),
      ),
    );
  const cluster = program
    .command('cluster')
    .description('hosts sharing one ci.yaml and a PostgreSQL database');
  cluster
    .command('import')
    .option('--json', 'print JSON')
    .description("move this host's state_dir (revisions, site states) into the database")
    .action(
      act(async (o: { json?: boolean }, cmd: Command) =>
        (await commands.cluster()).clusterImportCommand({ ...cfg(cmd), ...o }),
      ),
    );
  cluster
    .command('status')
    .option('--json', 'print JSON')
    .description('hosts (alive, load, config), the queues, and the sites each holds')
    .action(
      act(async (o: { json?: boolean }, cmd: Command) =>
        (await commands.cluster()).clusterStatusCommand({ ...cfg(cmd), ...o }),
      ),
    );
  program
    .command('demo')
    .option('--port <port>', 'dashboard port', '8750')
    .description('the embedded default: a sandbox with sample repositories')
    .action(
      act(async (o: { port: string }) => {
        const { demoCommand } = await import('../demo/demo.js');
        return demoCommand({ port: Number(o.port) });
      }),
    );

  program.hook('preAction', (_program, command) => {
    // The daemon writes no answer to stdout, and the demo must stop its
    // children first: both deal with a closed stdout themselves.
    if (command.name() !== 'demo' && command.name() !== 'run') endQuietlyWhenStdoutCloses();
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.exitCode === 0
      )
        return 0;
      return 2;
    }
    const message = redactor.redact(errorMessage(err));
    process.stderr.write(forTerminal(`stagepost: ${message}\n`, process.stderr));
    if (process.env.STAGEPOST_DEBUG && err instanceof Error && !(err instanceof StagepostError))
      process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}

/** package.json is two folders above src/cli, three above dist/src/cli. */
function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'stagepost' && pkg.version) return pkg.version;
    } catch {
      /* not at this level */
    }
  }
  return 'unknown';
}
