/**
 * The part of docs/config.md about what steps and jobs run with: every
 * variable they get, how a restart step leaves a server running, and what
 * a step can and cannot reach of the daemon. Rendered by `npm run docs`.
 */

/** Every variable a step or job gets from stagepost (SPEC "Environment of steps and jobs"). */
export const STEP_VARIABLES: Array<[name: string, meaning: string, example: string]> = [
  ['STAGEPOST_BRANCH', 'the branch name', 'branch1'],
  ['STAGEPOST_BUILD', "the build's id (unique per branch, increasing)", '17'],
  ['STAGEPOST_DIR', 'the branch directory (also the working directory)', '/srv/staging/branch1'],
  ['STAGEPOST_CUSTOMERS', 'customer names, space separated', 'osf anothercustomer'],
  ['STAGEPOST_MAILIN', 'mail-in customers of this branch, space separated, maybe empty', 'osf'],
  [
    'STAGEPOST_URLS',
    'the customer URLs (`<base_url>/<branch>/<customer>/`), space separated; empty without `site.base_url`',
    'https://karltest.example.com/branch1/osf/',
  ],
  [
    'STAGEPOST_REV_<SOURCE>',
    'the revision being built of each source (name upper-cased, `-` and `.` become `_`)',
    'STAGEPOST_REV_KARL=3f2a9c1e…',
  ],
  [
    'STAGEPOST_PREV_REV_<SOURCE>',
    'the revision of the last build of that source, empty on the first',
    'STAGEPOST_PREV_REV_KARL=0badc0de…',
  ],
  [
    'STAGEPOST_SMTP',
    "`127.0.0.1:<smtp_port>` of the branch's mail catcher, empty without `smtp_port`: the app's outgoing mail server",
    '127.0.0.1:2526',
  ],
  ['STAGEPOST_PORT', "the branch's `port` (its app server's), empty without one", '6544'],
  ['STAGEPOST_JOB', 'jobs only: the job name', 'nightly-sync'],
  [
    'PATH, HOME, LANG, LC_*, TZ',
    "taken from the daemon's environment (PATH defaults to `/usr/local/bin:/usr/bin:/bin`)",
    'LANG=C.UTF-8',
  ],
  [
    'names in `env.pass` and `env.set`',
    "what ci.yaml's `env` (top level and per branch) passes on or sets",
    'PIP_INDEX_URL=…',
  ],
];

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function stepEnvironmentMarkdown(): string[] {
  return [
    '## What steps and jobs get',
    '',
    'Values reach a step only through its environment, never pasted into the command text. A step or job gets exactly these variables (and what `sh` adds itself, like `PWD`):',
    '',
    '| variable | meaning | example |',
    '| --- | --- | --- |',
    ...STEP_VARIABLES.map(
      ([n, m, e]) => `| ${n.includes(' ') ? n : `\`${n}\``} | ${cell(m)} | \`${cell(e)}\` |`,
    ),
    '',
    "Nothing else of the daemon's environment reaches a step: not the notifiers' passwords, not the HTTP token, not a database URL the daemon was started with. A variable a step needs is named in ci.yaml:",
    '',
    '```yaml',
    'env:                        # every branch',
    "  pass: [PIP_INDEX_URL]     # from the daemon's environment, when it is set there",
    '  set: { DJANGO_SETTINGS_MODULE: karl.staging }',
    'branches:',
    '  branch1:',
    '    env: { set: { DB_URL: "${BRANCH1_DB_URL}" } }   # a secret a step needs, named on purpose',
    '```',
    '',
    '### A restart step that leaves a server running',
    '',
    "A step ends when its process ends, and stagepost kills a step's whole process group when it times out or the build is interrupted; after a step ends, output still arriving on its pipes is read for a second more, then cut off. A restart step that starts a long-running app server must therefore start it in its own session, with no pipe of the step left open:",
    '',
    '```sh',
    '# restart step: stop the old server, start the new one detached',
    'test -f app.pid && kill "$(cat app.pid)" 2>/dev/null',
    'PORT="$STAGEPOST_PORT" setsid nohup ./bin/serve >server.log 2>&1 </dev/null &',
    'echo $! > app.pid',
    '```',
    '',
    "`setsid` puts the server in a session (and process group) of its own, so ending the step does not end it; `>server.log 2>&1 </dev/null` lets the step's pipes close, so the build goes on at once. Under a process manager (supervisor, systemd --user) let that start it instead: `bin/supervisorctl restart all`.",
    '',
    '### What a step can still reach',
    '',
    "After loading ci.yaml the daemon deletes from its own environment every variable a `${NAME}` of ci.yaml read, and blanks them in the block the kernel shows as `/proc/<pid>/environ`: a step reading `/proc/$PPID/environ` finds none of them; a reload reads them from a copy the daemon keeps in memory. The foreground commands that run steps (`update`, `create`, `job`) forget them the same way before their first step. Steps still run as the daemon's user, so a step can read what that user can: ci.yaml itself, an `EnvironmentFile` the unit names, `state_dir` (build logs, caught mail, the outbox), and — where `kernel.yama.ptrace_scope` is 0 — the daemon's memory. Build logs and mail are masked, the files are not. Where that matters, run the steps as another user:",
    '',
    '- in the command: `run: sudo -n -u karl-build bin/buildout -N` with a sudoers line for exactly that command (`stagepost ALL=(karl-build) NOPASSWD: /srv/staging/*/bin/buildout -N`);',
    "- or keep the secrets out of the daemon's reach: systemd credentials (`LoadCredential=`) readable only by the daemon, and an `EnvironmentFile` owned by root with mode 0600 (systemd reads it before dropping privileges).",
    '',
  ];
}
