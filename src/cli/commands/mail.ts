import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { listCaughtMail, readCaughtMail } from '../../site/mail-store.js';
import { StagepostError } from '../../errors.js';
import { printJson, say, table, writeOut } from '../output.js';

/** `stagepost mail BRANCH [ID] [--json]`: what the branch's mail catcher caught. */
export async function mailCommand(
  branch: string,
  id: string | undefined,
  opts: { config?: string; json?: boolean },
): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  const found = config.branches.find((b) => b.name === branch);
  if (!found) throw new StagepostError('ENOBRANCH', `branch "${branch}" is not in ${config.file}`);
  if (!found.smtpPort && !id) {
    if (opts.json) printJson({ branch, catcher: false, mail: [] });
    else
      say(
        `${branch} has no mail catcher, so no mail is caught: give it "smtp_port: 2526" in ${config.file} to catch what its app sends`,
      );
    return 0;
  }
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
