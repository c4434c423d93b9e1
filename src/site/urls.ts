import type { BranchConfig, Config } from '../config/types.js';
import { envSuffix } from '../config/rules.js';

/**
 * Where a customer of a branch is served, and the environment a step or job
 * gets (SPEC "Environment of steps and jobs"). Values reach steps only through
 * the environment, never through the command text.
 */

/** `<base_url>/<branch>/<customer>/`, or null when `site.base_url` is not set. */
export function customerUrl(config: Config, branch: BranchConfig, customer: string): string | null {
  const base = config.site.baseUrl;
  if (!base) return null;
  return `${base.replace(/\/+$/, '')}/${encodeURIComponent(branch.name)}/${encodeURIComponent(customer)}/`;
}

export interface BuildIdentity {
  id: number;
  /** Revision being built, per source name. */
  revisions: Record<string, string>;
  /** Revision of the last build, per source name; null before the first. */
  previous: Record<string, string | null>;
}

export function stepEnvironment(
  config: Config,
  branch: BranchConfig,
  build: BuildIdentity,
): Record<string, string> {
  const urls = branch.customers
    .map((c) => customerUrl(config, branch, c))
    .filter((u): u is string => u !== null);
  const env: Record<string, string> = {
    ...branch.env,
    STAGEPOST_BRANCH: branch.name,
    STAGEPOST_BUILD: String(build.id),
    STAGEPOST_DIR: branch.dir,
    STAGEPOST_CUSTOMERS: branch.customers.join(' '),
    STAGEPOST_MAILIN: branch.mailin.join(' '),
    STAGEPOST_URLS: urls.join(' '),
    STAGEPOST_SMTP: branch.smtpPort ? `127.0.0.1:${branch.smtpPort}` : '',
    STAGEPOST_PORT: branch.port === undefined ? '' : String(branch.port),
  };
  for (const source of branch.sources) {
    const suffix = envSuffix(source.name);
    env[`STAGEPOST_REV_${suffix}`] = build.revisions[source.name] ?? '';
    env[`STAGEPOST_PREV_REV_${suffix}`] = build.previous[source.name] ?? '';
  }
  return env;
}
