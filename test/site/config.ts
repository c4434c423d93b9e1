import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';

/** A resolved config of two branch sites, parsed from ci.yaml text like an operator's. */
export function siteConfig(site: string, extra = ''): Config {
  const text = `version: 1
site:
${site}
steps:
  - { name: build, run: "true" }
branches:
  staging:
    dir: /srv/staging/staging
    port: 6543
    sources:
      - { name: karl, vcs: svn, url: "file:///repo/karl/trunk", path: src/karl }
    customers: [osf, anothercustomer]
  branch1:
    dir: /srv/staging/branch1
    port: 6544
    sources:
      - { name: karl, vcs: git, url: "file:///repo/karl.git", ref: feature-x, path: src/karl }
      - { name: osf-karl.v2, vcs: git, url: "file:///repo/osfkarl.git", ref: main, path: src/osfkarl }
    customers: [osf]
    mailin: [osf]
    smtp_port: 2526
${extra}`;
  return parseConfig(text, '/etc/stagepost/ci.yaml', {});
}

export function branchOf(config: Config, name: string) {
  const b = config.branches.find((x) => x.name === name);
  if (!b) throw new Error(`no branch ${name}`);
  return b;
}
