import { readFileSync } from 'node:fs';
import { parseDocument, isMap, isSeq, type YAMLMap } from 'yaml';
import { loadConfig, parseConfig, resolveConfigPath } from '../../config/load.js';
import { openSession } from '../session.js';
import { runJob } from '../../build/job.js';
import { listCaughtMail, readCaughtMail } from '../../site/mail-store.js';
import { renderProxyConfig } from '../../site/proxy-config.js';
import { StagepostError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { sourceSpec } from '../../poll/tracks.js';
import { formatDuration } from '../../util/duration.js';
import { printJson, say, table, note, writeOut } from '../output.js';

/** `stagepost job NAME [--branch B]`: run a job now, in the foreground. */
export async function jobCommand(
  name: string,
  opts: { config?: string; branch?: string },
): Promise<number> {
  const session = await openSession(opts.config, { notify: true, forgetSecrets: true });
  try {
    const job = session.config.jobs.find((j) => j.name === name);
    if (!job)
      throw new StagepostError(
        'ENOTFOUND',
        `job "${name}" is not in ${session.config.file} — jobs: ${session.config.jobs.map((j) => j.name).join(', ') || '(none)'}`,
      );
    const branches = opts.branch ? [opts.branch] : job.branches;
    if (opts.branch && !job.branches.includes(opts.branch))
      throw new StagepostError(
        'EUSAGE',
        `job ${name} does not run for branch ${opts.branch} (it runs for: ${job.branches.join(', ')})`,
      );
    let failed = false;
    const rows = [['BRANCH', 'RESULT', 'DURATION']];
    for (const b of branches) {
      const branch = session.branch(b);
      const record = await runJob(
        {
          ...session.buildContext({
            echo: (t) => writeOut(t),
            onLockWait: (o) => note(`${b}: waiting for pid ${o.pid} (${o.purpose})…`),
          }),
          notifyJob: (n) => session.dispatcher?.enqueue(n, ['job-failure'], b),
        },
        job,
        branch,
      );
      if (record.result !== 'success') failed = true;
      rows.push([b, record.result ?? '-', formatDuration(record.durationMs ?? 0)]);
    }
    say(table(rows).trimEnd());
    return failed ? 1 : 0;
  } finally {
    await session.close();
  }
}

/** `stagepost mail BRANCH [ID] [--json]`: what the branch's mail catcher caught. */
export async function mailCommand(
  branch: string,
  id: string | undefined,
  opts: { config?: string; json?: boolean },
): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  if (!config.branches.some((b) => b.name === branch))
    throw new StagepostError('ENOBRANCH', `branch "${branch}" is not in ${config.file}`);
  if (id) {
    writeOut(await readCaughtMail(config.stateDir, branch, id));
    return 0;
  }
  const list = await listCaughtMail(config.stateDir, branch);
  if (opts.json) {
    printJson({ branch, mail: list });
    return 0;
  }
  if (list.length === 0) {
    say(`${branch}: no mail caught`);
    return 0;
  }
  say(
    table([
      ['ID', 'RECEIVED', 'FROM', 'TO', 'SUBJECT'],
      ...list.map((m) => [
        m.id,
        m.receivedAt.replace('T', ' ').slice(0, 19),
        m.from,
        m.to.join(', '),
        m.subject,
      ]),
    ]).trimEnd(),
  );
  return 0;
}

/**
 * `stagepost switch BRANCH REF [--source NAME]`: point a source at another git
 * ref or svn URL by editing ci.yaml in place (comments and layout kept), only
 * when the result is valid and the ref exists on the remote.
 */
export async function switchCommand(
  branchName: string,
  ref: string,
  opts: { config?: string; source?: string },
): Promise<number> {
  const file = resolveConfigPath(opts.config, process.env, process.cwd());
  const config = await loadConfig(file);
  const branch = config.branches.find((b) => b.name === branchName);
  if (!branch) throw new StagepostError('ENOBRANCH', `branch "${branchName}" is not in ${file}`);
  if (!opts.source && branch.sources.length > 1)
    throw new StagepostError(
      'EUSAGE',
      `${branchName} has ${branch.sources.length} sources (${branch.sources.map((s) => s.name).join(', ')}) — say which with --source NAME`,
    );
  const source = opts.source
    ? branch.sources.find((s) => s.name === opts.source)
    : branch.sources[0];
  if (!source)
    throw new StagepostError(
      'EUSAGE',
      `${branchName} has no source "${opts.source}" (sources: ${branch.sources.map((s) => s.name).join(', ')})`,
    );
  const key = source.vcs === 'svn' ? 'url' : 'ref';

  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  const sources = doc.getIn(['branches', branchName, 'sources'], true);
  if (!isSeq(sources))
    throw new StagepostError('ECONFIG', `${file}: branches.${branchName}.sources is not a list`);
  const index = sources.items.findIndex((item) => isMap(item) && item.get('name') === source.name);
  if (index < 0)
    throw new StagepostError(
      'ECONFIG',
      `${file}: source ${source.name} of ${branchName} not found`,
    );
  doc.setIn(['branches', branchName, 'sources', index, key], ref);
  const next = doc.toString();

  // Valid as a whole?
  let nextConfig;
  try {
    nextConfig = parseConfig(next, file, process.env);
  } catch (err) {
    note(`refusing: the edited ci.yaml would be invalid:\n${(err as Error).message}`);
    return 1;
  }
  const nextSource = nextConfig.branches
    .find((b) => b.name === branchName)!
    .sources.find((s) => s.name === source.name)!;
  // Does the ref exist?
  const session = await openSession(opts.config);
  try {
    const plugin = await session.vcs.get(nextSource.vcs);
    const [answer] = await plugin.remoteRevisions([sourceSpec(nextSource)], {
      timeoutMs: branch.poll.timeoutMs,
    });
    if (!answer || 'missing' in answer) {
      note(
        `refusing: ${key} "${ref}" does not exist on the remote${answer && 'missing' in answer ? ` (${answer.reason})` : ''}; ci.yaml unchanged`,
      );
      return 1;
    }
    await writeFileAtomic(file, next);
    say(
      `${branchName}: source ${source.name} now at ${key} ${ref} (${plugin.shortRevision(answer.revision)}); a running daemon rebuilds it from its next poll`,
    );
    return 0;
  } finally {
    await session.close();
  }
}

/** `stagepost proxy-config [--listen ADDR:PORT]`: the nginx server block. */
export async function proxyConfigCommand(opts: {
  config?: string;
  listen?: string;
}): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  process.stdout.write(renderProxyConfig(config, { listen: opts.listen }));
  return 0;
}
