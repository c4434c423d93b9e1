import type { DemoPorts } from './ports.js';

/**
 * The ci.yaml of the demo, written into the sandbox with comments, so that a
 * reader learns the format from a configuration that really runs.
 */
export interface DemoSite {
  name: string;
  vcs: 'git' | 'svn';
  url: string;
  /** git branch; absent for svn (the URL is the branch). */
  ref?: string;
}

export const CUSTOMERS = ['osf', 'anothercustomer'];

/** YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (s: string) => JSON.stringify(s);

function source(site: DemoSite): string {
  const ref = site.ref ? `, ref: ${q(site.ref)}` : '';
  return `      - { name: app, vcs: ${site.vcs}, url: ${q(site.url)}${ref}, path: src/app }`;
}

export function demoConfig(sites: [DemoSite, DemoSite, DemoSite], ports: DemoPorts): string {
  const [staging, branch1, branch2] = sites;
  return `# ci.yaml of \`stagepost demo\`: a working configuration to learn from.
# The demo's daemon follows this file: edit it while the demo runs (add a
# customer, change a step, break it on purpose) and watch the log.
version: 1
state_dir: ./state            # build history, build logs, caught mail, the mail outbox

site:
  # A customer's URL is <base_url>/<branch>/<customer>/. In production that is
  # the nginx of \`stagepost proxy-config\` in front of the app servers; here a
  # tiny proxy inside the demo process plays its part, so the dashboard's
  # customer links lead to the branch sites' app servers.
  base_url: ${q(`http://127.0.0.1:${ports.proxy}`)}

poll:
  interval: 2s                # ask every remote this often (production: 1m is plenty)
  timeout: 10s                # a remote that takes longer counts as an error
  quiet: 0s                   # build as soon as a change is seen

builds:
  concurrency: 2              # builds and jobs at once, over all branches
  step_timeout: 2m            # for steps without their own timeout
  keep: 50                    # builds (and logs) kept per branch
  shutdown_grace: 5s          # on Ctrl-C, running builds get this long to finish

# Run once when a branch directory is first made, after the checkout.
create:
  - name: bootstrap
    run: mkdir -p bin var && echo "new branch site $STAGEPOST_BRANCH"

# The steps of every build, run in order by \`sh -c\` in the branch directory.
# They learn what to build from their environment (STAGEPOST_BRANCH,
# STAGEPOST_REV_APP, STAGEPOST_CUSTOMERS, STAGEPOST_SMTP, ...), never from
# text pasted into the command.
steps:
  - name: build               # the stand-in for buildout: fails while the checkout has a file BROKEN
    run: sh src/app/build.sh
    timeout: 1m
  - name: restart             # the stand-in for supervisorctl: (re)starts the app server on the branch's port
                              # (stagepost gives it the branch's port: STAGEPOST_PORT)
    run: node bin/restart.mjs
    timeout: 30s

# After the steps, every customer URL of the branch must answer.
health:
  url: "http://127.0.0.1:{port}/{customer}/"
  expect: 200-399
  timeout: 15s                # keep trying this long

notify:
  - use: email
    transport: dir:./mail     # write .eml files instead of talking to an SMTP server
    from: "Stagepost demo <stagepost@example.test>"
    to: [ops@example.test]
    committers: true          # also the authors of the commits in the build
    on: [started, success, failure, fixed, still-failing, job-failure, slow]
  - use: log                  # every event as a line of the daemon's log

# svn knows only user names; these become mail addresses.
authors:
  chris: chris@example.test
authors_domain: example.test

http:
  listen: 127.0.0.1:${ports.dashboard}     # the dashboard and JSON API
  token: \${STAGEPOST_DEMO_TOKEN}   # POSTs need it; taken from the environment, never written here

branches:
  staging:                    # ${staging.vcs === 'svn' ? 'svn trunk' : 'git main (svn is not installed)'}
    dir: ./sites/staging
    port: ${ports.apps.staging}
    sources:
${source(staging)}
    customers: [${CUSTOMERS.join(', ')}]
  branch1:                    # a git feature branch; processes the mail-in of osf
    dir: ./sites/branch1
    port: ${ports.apps.branch1}
    sources:
${source(branch1)}
    customers: [${CUSTOMERS.join(', ')}]
    mailin: [osf]
    smtp_port: ${ports.smtp}   # mail the app sends is caught here (see the dashboard), never delivered
  branch2:                    # another git branch; the demo breaks and repairs it now and then
    dir: ./sites/branch2
    port: ${ports.apps.branch2}
    sources:
${source(branch2)}
    customers: [${CUSTOMERS.join(', ')}]

jobs:
  sync:                       # the nightly production-data sync, every minute here
    schedule: "0 * * * * *"   # cron; 6 fields: seconds first
    branches: [staging]
    run: echo "copying production data into $STAGEPOST_DIR (pretend)" && date > var/last-sync
    timeout: 30s
    notify_on: [job-failure]
`;
}
