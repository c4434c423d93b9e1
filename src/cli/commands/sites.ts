/**
 * `stagepost pin|unpin SITE` and `stagepost retire --confirm`: the operator's
 * say over the patterns' sites. Each writes a file of its own under
 * state_dir, which the daemon reads at the next answer of the remote.
 */
import { loadConfig, resolveConfigPath } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { StagepostError } from '../../errors.js';
import { readPins, readSites, writePins, writeRetireConfirm } from '../../patterns/sites-file.js';
import { renderMailConfig } from '../../site/mail-config.js';
import { note, say } from '../output.js';

async function load(opts: { config?: string }): Promise<Config> {
  return loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
}

function siteOf(config: Config, name: string): void {
  const branch = config.branches.find((b) => b.name === name);
  if (!branch)
    throw new StagepostError(
      'ENOBRANCH',
      `site "${name}" is not in ${config.file} or its patterns`,
    );
  if (!branch.pattern)
    throw new StagepostError(
      'EUSAGE',
      `${name} is a branch written in ${config.file}, not a site of a pattern: it is never retired, so there is nothing to pin`,
    );
}

export async function pinCommand(
  site: string,
  pin: boolean,
  opts: { config?: string },
): Promise<number> {
  const config = await load(opts);
  const pins = readPins(config.stateDir);
  if (pin) {
    siteOf(config, site);
    pins.add(site);
  } else if (!pins.delete(site)) {
    say(`${site} was not pinned`);
    return 0;
  }
  await writePins(config.stateDir, pins);
  say(
    pin
      ? `${site} pinned: never retired or bumped, and it counts against its pattern's slots`
      : `${site} unpinned: retired again when its branch is gone, idle or bumped`,
  );
  return 0;
}

export async function retireCommand(opts: { config?: string; confirm?: boolean }): Promise<number> {
  const config = await load(opts);
  const held = Object.entries(readSites(config.stateDir).held ?? {});
  if (!opts.confirm) {
    for (const [pattern, h] of held)
      say(`${pattern}: retiring ${h.sites.join(' ')} is held since ${h.since}`);
    if (held.length === 0) say('no retirement is held');
    throw new StagepostError(
      'EUSAGE',
      'stagepost retire only confirms held retirements: run it with --confirm to let them proceed',
    );
  }
  await writeRetireConfirm(config.stateDir, new Date());
  if (held.length === 0) say('no retirement is held now; the confirmation covers none');
  for (const [pattern, h] of held)
    say(`${pattern}: ${h.sites.join(' ')} retire at the next answer of the remote (if still gone)`);
  return 0;
}

/** `stagepost mail-config`: the Postfix transport map of the mail-in customers. */
export async function mailConfigCommand(opts: { config?: string }): Promise<number> {
  const config = await load(opts);
  const { text, skipped } = renderMailConfig(config);
  for (const s of skipped) note(s);
  process.stdout.write(text);
  return 0;
}
