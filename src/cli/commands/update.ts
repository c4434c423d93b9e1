import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BranchConfig } from '../../config/types.js';
import { openSession, type Session } from '../session.js';
import { runBuild, type BuildOutcome } from '../../builds/builder.js';
import { readLock } from '../../state/lock.js';
import type { MailCatcher } from '../../site/mail-catcher.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { note, say, table, writeOut } from '../output.js';
import { selectBranches } from './poll.js';

/**
 * `stagepost update [BRANCH…] [--all] [--force]`: build now, in the
 * foreground, the log streaming to the terminal. Waits for (never overlaps) a
 * daemon's build of the same branch.
 */
export async function updateCommand(
  names: string[],
  opts: { config?: string; all?: boolean; force?: boolean },
): Promise<number> {
  if (names.length === 0 && !opts.all)
    throw new StagepostError('EUSAGE', 'name the branches to update, or use --all');
  const session = await openSession(opts.config, { notify: true, forgetSecrets: true });
  try {
    const branches = opts.all ? session.config.branches : selectBranches(session, names);
    note(`polling ${branches.length} branch(es)…`);
    await session.poller.setBranches(branches, false);
    await session.poller.pollNow();
    const results: Array<{
      branch: string;
      outcome: BuildOutcome | { status: 'error'; reason: string };
    }> = [];
    for (const [i, branch] of branches.entries()) {
      if (branches.length > 1) note(`[${i + 1}/${branches.length}] ${branch.name}`);
      const pollError = session.pollErrors.get(branch.name);
      if (pollError) {
        note(`${branch.name}: remote failed: ${pollError}`);
        results.push({ branch: branch.name, outcome: { status: 'error', reason: pollError } });
        continue;
      }
      const outcome = await buildInForeground(session, branch, {
        force: !!opts.force,
        prefix: branches.length > 1,
      });
      results.push({ branch: branch.name, outcome });
    }
    const rows = [['BRANCH', 'RESULT', 'BUILD', 'DURATION', 'FAILED STEP']];
    for (const { branch, outcome } of results) {
      if (outcome.status === 'built')
        rows.push([
          branch,
          outcome.record.result ?? '-',
          `#${outcome.record.id}`,
          formatDuration(outcome.record.durationMs ?? 0),
          outcome.record.failedStep ?? '',
        ]);
      else if (outcome.status === 'up-to-date') rows.push([branch, 'up to date', '', '', '']);
      else rows.push([branch, 'not built', '', '', outcome.reason]);
    }
    say(table(rows).trimEnd());
    const failed = results.some(
      ({ outcome }) =>
        outcome.status === 'error' ||
        outcome.status === 'no-revision' ||
        (outcome.status === 'built' && outcome.record.result !== 'success'),
    );
    return failed ? 1 : 0;
  } finally {
    await session.close();
  }
}

/** `stagepost create BRANCH`: make a branch directory that does not exist yet, then its first build. */
export async function createCommand(name: string, opts: { config?: string }): Promise<number> {
  const session = await openSession(opts.config, { notify: true, forgetSecrets: true });
  try {
    const branch = session.branch(name);
    if (existsSync(branch.dir))
      throw new StagepostError(
        'EEXISTS',
        `${branch.dir} already exists — \`stagepost create\` only makes new branch sites; use \`stagepost update ${name}\` to rebuild it`,
      );
    await session.poller.setBranches([branch], false);
    await session.poller.pollNow();
    const pollError = session.pollErrors.get(name);
    if (pollError) throw new StagepostError('EREMOTE', `cannot create ${name}: ${pollError}`);
    const outcome = await buildInForeground(session, branch, {
      force: true,
      create: true,
      prefix: false,
    });
    if (outcome.status !== 'built') {
      note(`${name}: not built: ${'reason' in outcome ? outcome.reason : outcome.status}`);
      return 1;
    }
    say(`${name}: created, build #${outcome.record.id} ${outcome.record.result}`);
    return outcome.record.result === 'success' ? 0 : 1;
  } finally {
    await session.close();
  }
}

export async function buildInForeground(
  session: Session,
  branch: BranchConfig,
  opts: { force: boolean; create?: boolean; prefix: boolean },
): Promise<BuildOutcome> {
  // With no daemon running, this process runs the branch's mail catcher for the build.
  const daemon = await readLock(path.join(session.config.stateDir, 'daemon.lock'));
  let catcher: MailCatcher | null = null;
  if (!daemon && branch.smtpPort) {
    const { MailCatcher } = await import('../../site/mail-catcher.js');
    catcher = new MailCatcher({
      branch: branch.name,
      port: branch.smtpPort,
      host: '127.0.0.1',
      stateDir: session.config.stateDir,
      keep: 300,
      relay:
        branch.mailout && session.config.site.smtpRelay
          ? { url: session.config.site.smtpRelay }
          : null,
      log: session.log.child({ branch: branch.name }),
    });
    try {
      await catcher.start();
    } catch (err) {
      note(`mail catcher on port ${branch.smtpPort} could not start: ${(err as Error).message}`);
      catcher = null;
    }
  }
  const prefix = opts.prefix ? `[${branch.name}] ` : '';
  let pending = '';
  const echo = (text: string) => {
    const lines = (pending + text).split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) writeOut(`${prefix}${l}\n`);
  };
  try {
    const outcome = await runBuild(
      session.buildContext({
        echo,
        onLockWait: (owner) =>
          note(`${branch.name}: waiting for pid ${owner.pid} (${owner.purpose}) to finish…`),
      }),
      branch,
      { force: opts.force, create: opts.create },
    );
    if (pending) writeOut(`${prefix}${pending}\n`);
    if (outcome.status === 'up-to-date')
      note(`${branch.name}: up to date (use --force to rebuild)`);
    return outcome;
  } finally {
    await catcher?.stop();
  }
}
