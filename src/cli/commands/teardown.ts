import { openSession } from '../session.js';
import { runTeardown } from '../../builds/teardown.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { note, say } from '../output.js';

/**
 * `stagepost teardown BRANCH`: run the branch's teardown steps now, in the
 * foreground (before removing it from ci.yaml, or for a branch removed while
 * no daemon ran). Waits for a running build of the branch.
 */
export async function teardownCommand(name: string, opts: { config?: string }): Promise<number> {
  const session = await openSession(opts.config);
  try {
    const branch = session.branch(name);
    if ((branch.teardown ?? []).length === 0)
      throw new StagepostError(
        'EUSAGE',
        `${name} has no teardown steps — add "teardown:" (for every branch, or under branches.${name}) to ${session.config.file}`,
      );
    const record = await runTeardown(
      session.buildContext({
        echo: (t) => process.stdout.write(t),
        onLockWait: (o) => note(`${name}: waiting for pid ${o.pid} (${o.purpose}) to finish…`),
      }),
      branch,
    );
    if (!record) {
      say(`${name}: ${branch.dir} does not exist; nothing to tear down`);
      return 0;
    }
    say(
      `${name}: teardown #${record.id} ${record.result} in ${formatDuration(record.durationMs ?? 0)}${record.failedStep ? ` (failed step: ${record.failedStep})` : ''}`,
    );
    return record.result === 'success' ? 0 : 1;
  } finally {
    await session.close();
  }
}
