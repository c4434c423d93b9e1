import type { Commit } from 'stagepost/plugin-api';

/**
 * `git log` output as data. Fields and records are NUL-separated (`-z`), and a
 * commit message cannot hold a NUL, so a hostile subject (newlines, tabs,
 * `$(…)`) stays one field and is never interpreted.
 */
export const LOG_FORMAT = '--format=%H%x00%an%x00%ae%x00%aI%x00%B';
const FIELDS = 5;

export function parseLog(stdout: string): Commit[] {
  const tokens = stdout.split('\0');
  if (tokens.length > 0 && tokens[tokens.length - 1].trim() === '') tokens.pop();
  if (tokens.length % FIELDS !== 0)
    throw new Error(`unexpected git log output (${tokens.length} fields)`);
  const commits: Commit[] = [];
  for (let i = 0; i < tokens.length; i += FIELDS) {
    const [id, author, email, date, message] = tokens.slice(i, i + FIELDS) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const cleanId = id.replace(/^\n/, '');
    if (!/^[0-9a-f]{40,64}$/.test(cleanId))
      throw new Error(
        `unexpected git log output (not a commit id: ${JSON.stringify(cleanId.slice(0, 80))})`,
      );
    commits.push({
      id: cleanId,
      author,
      email,
      date,
      subject: message.trimStart().split('\n')[0].trimEnd(),
    });
  }
  return commits;
}
