import { openSession } from '../session.js';
import { runJob } from '../../builds/job.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { say, table, note, writeOut } from '../output.js';

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
        'EUSAGE',
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
          notifyJob: (n, events) => session.dispatcher?.enqueue(n, events, b),
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
