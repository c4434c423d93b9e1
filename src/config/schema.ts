/**
 * The shape of ci.yaml as written, in zod. The loader validates with these,
 * and `npm run docs` turns the very same schemas (their `.describe()` texts,
 * `default` and `examples` metadata) into docs/config.md and
 * config/ci.schema.json, so the reference cannot drift from the code.
 *
 * Values stay as written here (durations as `30s`, paths relative); resolve.ts
 * turns them into the Config of types.ts.
 */
import { z } from 'zod';
import { Cron } from 'croner';
import { EVENT_NAMES, type EventName } from '../plugin-api.js';
import { SIZE_PATTERN, parseSize } from '../util/size.js';
import { parseDuration } from '../util/duration.js';

/** Every default of ci.yaml, in the written form: resolve.ts applies them, the docs show them. */
export const DEFAULTS = {
  stateDir: '.stagepost',
  poll: { interval: '60s', timeout: '30s', quiet: '0s' },
  builds: {
    concurrency: 1,
    step_timeout: '1h',
    keep: 50,
    shutdown_grace: '30s',
    checkout_timeout: '5m',
    checkout_stall: '60s',
    log_max: '20MB',
  },
  health: { expect: '200-399', timeout: '60s' },
  notifyOn: [
    'failure',
    'fixed',
    'ref-missing',
    'ref-back',
    'slow',
    'retired',
    'retire-held',
  ] as EventName[],
  job: { timeout: '1h', notifyOn: ['job-failure'] as EventName[] },
  httpListen: '127.0.0.1:8750',
  retireAfter: 3,
} as const;

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

const name = (what: string) =>
  z.string().regex(NAME_PATTERN, {
    error: `${what} names are lower-case letters, digits, ".", "_" and "-", starting with a letter or digit (they become URL segments and environment-variable suffixes) — rename it`,
  });

export const BranchName = name('branch');
export const SourceName = name('source');
export const CustomerName = name('customer');
export const JobName = name('job');
export const HostName = name('host');

const DURATION = /^(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)$/;
const durationHelp =
  'a duration with a unit — 500ms, 30s, 5m, 16h, 1h30m — or a bare number of seconds';

const notDuration = `not a duration: write ${durationHelp}`;
export const Duration = z.union(
  [
    z.number().nonnegative({ error: notDuration }),
    z.string().trim().regex(DURATION, { error: notDuration }),
  ],
  {
    error: notDuration,
  },
);

const notSize = 'not a size: write e.g. 20MB, 512KB, 1GB or a number of bytes (at least 64KB)';
/** A size in bytes or with a unit; below 64KB a log would hold little but the cut. */
export const Size = z.union(
  [
    z.number().int({ error: notSize }).min(65536, { error: notSize }),
    z
      .string()
      .regex(SIZE_PATTERN, { error: notSize })
      .refine((v) => (parseSize(v) ?? 0) >= 65536, { error: notSize }),
  ],
  { error: notSize },
);

/** A whole number of something, at least 1. */
const count = (what: string) =>
  z
    .number({ error: `${what} is a whole number, 1 or more` })
    .int({ error: `${what} is a whole number, 1 or more` })
    .min(1, { error: `${what} is a whole number, 1 or more` });

/**
 * setTimeout's limit (about 24.8 days): Node fires a longer wait after 1 ms,
 * so `30d` would poll in a tight loop and `timeout: 25d` would time out at once.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * A duration Node's timers can honour. `positive`: 0 is refused too, where it
 * would switch a timeout off or make an interval spin.
 */
const honourable = (positive: boolean) =>
  Duration.superRefine((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) return;
    const range = `the allowed range is ${positive ? '1ms' : '0'} to 24d (${MAX_DURATION_MS} ms, the longest wait Node's timers honour)`;
    if (ms > MAX_DURATION_MS)
      ctx.addIssue({ code: 'custom', message: `${String(value)} is too long: ${range}` });
    else if (positive && ms < 1)
      ctx.addIssue({
        code: 'custom',
        message: `${String(value)} would switch this off: ${range}`,
      });
  });

const duration = (description: string, dflt?: string, positive = true) =>
  (dflt === undefined ? honourable(positive) : honourable(positive).meta({ default: dflt }))
    .describe(description)
    .optional();

const portError = 'a port is a whole number from 1 to 65535';
const Port = z
  .number({ error: portError })
  .int({ error: portError })
  .min(1, { error: portError })
  .max(65535, { error: portError });

const Event = z.enum(EVENT_NAMES as [EventName, ...EventName[]], {
  error: `events are ${EVENT_NAMES.join(', ')}`,
});

export const StepConfigSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .describe('Shown in the build log, the status and the mail subject (`FAILED (buildout)`).')
      .meta({ examples: ['buildout'] }),
    run: z
      .string()
      .min(1)
      .describe(
        'Shell command, run by `sh -c` in the branch directory. `${NAME}` is left for the shell to expand.',
      )
      .meta({ examples: ['bin/buildout -N'] }),
    timeout: duration(
      'Killed (with its process group) after this long. Default: `builds.step_timeout` of the branch.',
    ),
  })
  .strict();

export const Steps = z.array(StepConfigSchema);

export const PollSettingsSchema = z
  .object({
    interval: duration('How often every remote is asked.', DEFAULTS.poll.interval),
    timeout: duration(
      'A remote query longer than this is killed and counts as an error.',
      DEFAULTS.poll.timeout,
    ),
    quiet: duration(
      'Build only once the revision has stood still this long.',
      DEFAULTS.poll.quiet,
      false,
    ),
  })
  .strict();

export const BranchBuildSettingsSchema = z
  .object({
    step_timeout: duration('Timeout of steps without their own.', DEFAULTS.builds.step_timeout),
    keep: count('keep')
      .describe(
        "Builds (and their logs) of history kept per branch; each job keeps as many runs of its own, apart. The branch's last build and last successful build are always kept.",
      )
      .meta({ default: DEFAULTS.builds.keep })
      .optional(),
  })
  .strict();

export const BuildSettingsSchema = BranchBuildSettingsSchema.extend({
  concurrency: count('concurrency')
    .describe('Builds and jobs at once over all branches (buildouts need RAM).')
    .meta({ default: DEFAULTS.builds.concurrency })
    .optional(),
  shutdown_grace: duration(
    'On SIGTERM, running builds may finish for this long before they are killed (and redone after the restart).',
    DEFAULTS.builds.shutdown_grace,
    false,
  ),
  checkout_timeout: duration(
    'A checkout (fetch and switch of all sources of a build) taking longer is ended and the build fails, so a hung remote frees its build slot.',
    DEFAULTS.builds.checkout_timeout,
  ),
  checkout_stall: duration(
    'A checkout whose transfer shows no progress for this long is ended (git over http: lowSpeedTime; others: no output).',
    DEFAULTS.builds.checkout_stall,
  ),
  log_max: Size.describe(
    'A build log longer than this is cut: its start and its end are kept, with a line where it was cut.',
  )
    .meta({ default: DEFAULTS.builds.log_max, examples: ['20MB', '512KB'] })
    .optional(),
}).strict();

const Status = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^\d{3}(\s*-\s*\d{3})?$/),
]);

export const HealthSettingsSchema = z
  .object({
    url: z
      .string()
      .min(1)
      .describe(
        'URL asked for every customer of the branch; `{branch}`, `{customer}` and `{port}` are filled in.',
      )
      .meta({ examples: ['http://127.0.0.1:{port}/{customer}/'] })
      .optional(),
    expect: z
      .union([Status, z.array(Status).min(1)], {
        error: 'expect is a status (200), a range (200-399) or a list of them',
      })
      .describe('Accepted HTTP statuses: `200`, a range `200-399`, or a list of them.')
      .meta({ default: DEFAULTS.health.expect })
      .optional(),
    timeout: duration('Keep retrying until this has passed.', DEFAULTS.health.timeout),
  })
  .strict();

export const NotifierConfigSchema = z
  .object({
    use: z
      .string()
      .min(1)
      .describe(
        '`email`, `webhook`, `log`, a path (`./my-plugins/irc.js`, relative to ci.yaml) or a package name.',
      )
      .meta({ examples: ['email'] }),
    on: z
      .array(Event)
      .describe(`Events this notifier sends: ${EVENT_NAMES.join(', ')}.`)
      .meta({ default: DEFAULTS.notifyOn })
      .optional(),
  })
  // The other keys are the plugin's options: its own validate() checks them.
  .loose()
  .describe(
    "A notifier. Keys other than `use` and `on` are the plugin's options (`transport`, `from`, `to`, `committers` for email; `url` for webhook).",
  );

export const SOURCE_KEYS = ['name', 'vcs', 'url', 'ref', 'path'] as const;

export const SourceConfigSchema = z
  .object({
    name: SourceName.describe('Names the source in mail and in `STAGEPOST_REV_<NAME>`.').meta({
      examples: ['karl'],
    }),
    vcs: z
      .string()
      .min(1)
      .describe("`git`, `svn`, or a VCS plugin's path or package name.")
      .meta({ examples: ['git'] }),
    url: z
      .string()
      .min(1)
      .describe('Remote URL. For svn the URL is the branch (`.../trunk`).')
      .meta({ examples: ['git@git.example.com:karl.git'] }),
    ref: z
      .string()
      .min(1)
      .describe('git: the branch, tag or full ref to build (required). svn: not used.')
      .meta({ examples: ['main'] })
      .optional(),
    path: z
      .string()
      .min(1)
      .describe(
        'Checkout directory, relative to the branch dir (must stay inside it). Default: `src/<name>`.',
      )
      .meta({ examples: ['src/karl'] })
      .optional(),
  })
  // Extra keys are options of a plugin VCS; rules.ts rejects them for git and svn.
  .loose()
  .describe('One checkout inside the branch directory.');

const PORT_RANGE = /^(\d{1,5})\s*-\s*(\d{1,5})$/;
const portRangeError =
  'a port range is "FIRST-LAST", two ports from 1 to 65535 with FIRST <= LAST, like "7000-7099"';
export const PortRange = z
  .string({ error: portRangeError })
  .regex(PORT_RANGE, { error: portRangeError })
  .refine(
    (v) => {
      const [, a, b] = PORT_RANGE.exec(v)!.map(Number);
      return a >= 1 && b <= 65535 && a <= b;
    },
    { error: portRangeError },
  );

export const MatchSchema = z
  .object({
    source: SourceName.describe(
      'The source (git) whose remote branches make the sites; its `ref` is each matching branch.',
    ).meta({ examples: ['app'] }),
    refs: z
      .string()
      .min(1)
      .describe(
        "Glob over the branch names of that source's remote: `*` within one `/` segment, `**` across them, `?` one character.",
      )
      .meta({ examples: ['feature/*'] }),
    retire_after: count('retire_after')
      .describe(
        'A site is retired once its branch was missing from this many successful answers in a row (failed, timed-out and empty answers never count).',
      )
      .meta({ default: DEFAULTS.retireAfter })
      .optional(),
  })
  .strict();

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envNameError =
  'an environment variable name is letters, digits and "_", not starting with a digit, and not STAGEPOST_* (those are set by stagepost)';
const EnvName = z
  .string({ error: envNameError })
  .regex(ENV_NAME, { error: envNameError })
  .refine((n) => !n.startsWith('STAGEPOST_'), { error: envNameError });

export const StepEnvSchema = z
  .object({
    pass: z
      .array(EnvName)
      .describe(
        "Variables of the daemon's environment that steps and jobs get too (when set). Nothing else of it reaches them but PATH, HOME, LANG, LC_*, TZ.",
      )
      .meta({ examples: [['PIP_INDEX_URL', 'http_proxy']] })
      .optional(),
    set: z
      .record(EnvName, z.string({ error: 'env.set values are strings — quote numbers' }))
      .describe(
        'Variables set for steps and jobs. `${NAME}` is substituted at load time like anywhere else, so a secret a step needs is named here on purpose.',
      )
      .meta({ examples: [{ DJANGO_SETTINGS_MODULE: 'karl.staging' }] })
      .optional(),
  })
  .strict();

export const BranchConfigSchema = z
  .object({
    dir: z
      .string()
      .min(1)
      .describe(
        "The branch site's directory (relative to ci.yaml or absolute). Made on the first build.",
      )
      .meta({ examples: ['/srv/staging/branch1'] }),
    port: z
      .union([Port, PortRange], { error: `${portError}, or for a pattern a range "7000-7099"` })
      .describe(
        "The branch's app server port, for health checks and proxy-config. A pattern gives a range (`7000-7099`): each site gets a free port of it, kept while the site lives.",
      )
      .meta({ examples: [6544, '7000-7099'] })
      .optional(),
    sources: z
      .array(SourceConfigSchema)
      .min(1, { error: 'a branch needs at least one source' })
      .describe('The checkouts of the branch.'),
    customers: z
      .array(CustomerName)
      .describe('Customers served at `<base_url>/<branch>/<customer>/`.')
      .meta({ default: [] })
      .optional(),
    mailin: z
      .array(CustomerName)
      .describe(
        'Customers whose mail-in this branch processes (each customer on at most one branch).',
      )
      .meta({ default: [] })
      .optional(),
    smtp_port: Port.describe(
      "Port of the branch's mail catcher on 127.0.0.1 (unique across branches).",
    )
      .meta({ examples: [2526] })
      .optional(),
    mailout: z
      .boolean()
      .describe('true: caught mail is also relayed through `site.smtp_relay`; false: only caught.')
      .meta({ default: false })
      .optional(),
    poll: PollSettingsSchema.describe('Overrides of the top-level `poll`.').optional(),
    builds: BranchBuildSettingsSchema.describe(
      'Overrides of the top-level `builds` (step_timeout, keep).',
    ).optional(),
    env: StepEnvSchema.describe(
      "Added to the top-level `env` for this branch's steps and jobs (`pass` joins, `set` overrides).",
    ).optional(),
    steps: Steps.describe('Replaces the top-level `steps` for this branch.').optional(),
    create: Steps.describe('Replaces the top-level `create` for this branch.').optional(),
    teardown: Steps.describe('Replaces the top-level `teardown` for this branch.').optional(),
    health: z
      .union([HealthSettingsSchema, z.literal(false)], {
        error: 'health is a map (url, expect, timeout), or false to check nothing',
      })
      .describe(
        'Overrides keys of the top-level `health`; `false` turns health checks off for this branch.',
      )
      .optional(),
    notify: z
      .array(NotifierConfigSchema)
      .describe('Notifiers added to the top-level ones for this branch.')
      .optional(),
    host: z
      .union([HostName, z.array(HostName).min(1)], {
        error:
          'host is a host name (staging2), or for a pattern a list of them ([staging2, staging3])',
      })
      .describe(
        'With `cluster:`, the host that holds this site (its `cluster.host` name): only that host builds it. A pattern may list several: the first decides its sites, and each new site goes to the listed host holding fewest of them, and stays there.',
      )
      .meta({ examples: ['staging2', ['staging2', 'staging3']] })
      .optional(),
    slots: count('slots')
      .describe(
        'A pattern: at most this many sites at once (pinned ones count). The branches whose new commits stagepost saw last get them; the others wait, listed in status.',
      )
      .meta({ examples: [3] })
      .optional(),
    idle: duration(
      'A pattern: retire a site after this long without a new commit on its branch (pinned sites stay).',
    ),
    keep_dir: z
      .boolean()
      .describe(
        "A pattern: true keeps a retired site's directory; false (default) removes it after the teardown steps.",
      )
      .meta({ default: false })
      .optional(),
    match: MatchSchema.describe(
      'Makes this entry a pattern: one site per remote branch that matches, named after the branch (`feature/Foo_Bar` → `feature-foo-bar`). `{branch}` in the other values is that name.',
    ).optional(),
  })
  .strict();

function validCron(expr: string): boolean {
  try {
    new Cron(expr, { paused: true });
    return true;
  } catch {
    return false;
  }
}

function validTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const JobConfigSchema = z
  .object({
    schedule: z
      .string()
      .refine(validCron, {
        error:
          'not a cron expression: use 5 fields (minute hour day month weekday, like "0 2 * * *") or 6 with seconds first',
      })
      .describe('Cron: 5 fields, or 6 with seconds first.')
      .meta({ examples: ['0 2 * * *'] }),
    timezone: z
      .string()
      .refine(validTimezone, { error: 'unknown time zone: use an IANA name like Europe/Berlin' })
      .describe("IANA time zone of the schedule. Default: the server's.")
      .meta({ examples: ['Europe/Berlin'] })
      .optional(),
    branches: z
      .union([z.literal('all'), z.array(BranchName).min(1)], {
        error: 'branches is a list of branch names, or all',
      })
      .describe(
        'The branches it runs for, each through the build queue (never during a build of that branch): a list, or `all`.',
      )
      .meta({ examples: [['staging'], 'all'] }),
    run: z
      .string()
      .min(1)
      .describe(
        'Shell command, run by `sh -c` in each branch directory. `${NAME}` is left for the shell. A scheduled run for a branch whose directory does not exist yet (never built) is skipped and logged, not recorded as a failure.',
      )
      .meta({ examples: ['bin/karlserve sync'] }),
    timeout: duration('Killed (with its process group) after this long.', DEFAULTS.job.timeout),
    notify_on: z
      .array(
        z.enum(['job-failure'], {
          error: 'a job has one event, job-failure: list it, or give [] to send no mail',
        }),
      )
      .describe(
        'Events of this job the notifiers send (when their `on` has them too): `job-failure`, a run that failed or timed out; `[]` sends nothing for this job.',
      )
      .meta({ default: DEFAULTS.job.notifyOn })
      .optional(),
  })
  .strict();

export const HttpConfigSchema = z
  .object({
    listen: z
      .union(
        [
          Port,
          z
            .string()
            .regex(/^(\d+|(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d+)$/)
            .refine((v) => Port.safeParse(Number(/(\d+)$/.exec(v)?.[1])).success, {
              error: `listen is PORT or ADDR:PORT, and ${portError}`,
            }),
        ],
        {
          error: 'listen is PORT (on 127.0.0.1) or ADDR:PORT',
        },
      )
      .describe('`PORT` alone means 127.0.0.1:PORT; or `ADDR:PORT`.')
      .meta({ default: DEFAULTS.httpListen })
      .optional(),
    token: z
      .string()
      .min(1)
      .describe(
        'Bearer token every POST needs. Write `${STAGEPOST_TOKEN}` to keep it out of the file.',
      )
      .meta({ examples: ['${STAGEPOST_TOKEN}'] })
      .optional(),
    public_logs: z
      .boolean()
      .describe(
        'Build logs are readable without the token, like the dashboard. false: `GET …/builds/N/log` needs `Authorization: Bearer <token>` too (the dashboard then shows no logs: a browser sends no token).',
      )
      .meta({ default: true })
      .optional(),
    public_url: z
      .string()
      .url({ error: 'public_url is a URL like https://ci.example.com' })
      .describe(
        'Base URL of links in mail. Default: `http://<listen address>`. Its host is also accepted in the `Host` header of requests (a proxy in front), besides the listen address, `localhost` and IP addresses: any other name is refused with 421 (DNS rebinding).',
      )
      .meta({ examples: ['https://ci.example.com'] })
      .optional(),
  })
  .strict();

export const SiteConfigSchema = z
  .object({
    base_url: z
      .string()
      .url({ error: 'base_url is a URL like https://karltest.example.com' })
      .describe("A customer's URL is `<base_url>/<branch>/<customer>/`.")
      .meta({ examples: ['https://karltest.example.com'] })
      .optional(),
    certificate: z
      .string()
      .min(1)
      .describe('The one TLS certificate, for proxy-config (relative to ci.yaml or absolute).')
      .optional(),
    certificate_key: z.string().min(1).describe('Its key.').optional(),
    mail_domain: z
      .string()
      .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$/, {
        error: 'mail_domain is a domain name like staging.example.com',
      })
      .describe(
        "Mail-in of a customer is addressed to `<customer>.<mail_domain>`; `stagepost mail-config` maps it to the catcher of the customer's mailin branch.",
      )
      .meta({ examples: ['staging.example.com'] })
      .optional(),
    smtp_relay: z
      .string()
      .min(1)
      .describe('Where mail of `mailout: true` branches really goes.')
      .meta({ examples: ['smtp://localhost:25'] })
      .optional(),
  })
  .strict();

export const ClusterConfigSchema = z
  .object({
    database: z
      .string()
      // `${VAR}` as written passes too: editors check the file before substitution.
      .regex(/^(postgres(ql)?:\/\/|.*\$\{)/, {
        error:
          'cluster.database is a PostgreSQL URL like postgres://stagepost@db.example.com/stagepost',
      })
      .describe(
        'The PostgreSQL database every host shares. Write `${STAGEPOST_DATABASE_URL}` to keep its password out of the file; it is masked in everything stagepost shows.',
      )
      .meta({ examples: ['${STAGEPOST_DATABASE_URL}'] }),
    host: HostName.describe(
      "This daemon's name in the cluster. Default: `$STAGEPOST_HOST`, else the machine's hostname (lower-cased).",
    )
      .meta({ examples: ['staging1'] })
      .optional(),
    heartbeat: duration(
      'How often a host tells the others it is alive; one missing for 3 heartbeats is shown as down.',
      '5s',
    ),
  })
  .strict();

export const ConfigSchema = z
  .object({
    version: z
      .literal(1, { error: 'version must be 1 — write "version: 1" at the top' })
      .describe('Format version: 1.'),
    state_dir: z
      .string()
      .min(1)
      .describe(
        'State, build logs, caught mail, mail outbox. Default: `.stagepost` beside ci.yaml.',
      )
      .meta({ default: './.stagepost' })
      .optional(),
    site: SiteConfigSchema.describe('The public side of the staging server.').optional(),
    cluster: ClusterConfigSchema.describe(
      'Run as one of several staging hosts sharing a PostgreSQL database (docs/cluster.md). Absent: one host, no database.',
    ).optional(),
    poll: PollSettingsSchema.describe('Polling of the remotes.').optional(),
    builds: BuildSettingsSchema.describe('The build queue.').optional(),
    env: StepEnvSchema.describe(
      "The environment of steps and jobs beyond PATH, HOME, LANG, LC_*, TZ and the STAGEPOST_* variables: the daemon's own environment (its secrets) does not reach them.",
    ).optional(),
    steps: Steps.describe(
      'Default steps of every branch, run in order by `sh -c` in the branch dir.',
    ).optional(),
    create: Steps.describe(
      'Steps run once when a branch directory is first made, after its sources are checked out.',
    ).optional(),
    teardown: Steps.describe(
      'Steps run in the branch dir when a branch leaves ci.yaml (after its running build), or by `stagepost teardown BRANCH`: stop its app server, remove what it should not leave behind. Without them a removed branch keeps running and its directory stays.',
    ).optional(),
    health: HealthSettingsSchema.describe(
      'After the steps, each customer URL must answer.',
    ).optional(),
    notify: z.array(NotifierConfigSchema).describe('Notifiers of every branch.').optional(),
    authors: z
      .record(z.string(), z.string().min(1))
      .describe('svn user names (and git addresses to rewrite) → email address.')
      .optional(),
    authors_domain: z
      .string()
      .min(1)
      .describe('Fallback for an svn user not in `authors`: `user@authors_domain`.')
      .optional(),
    http: HttpConfigSchema.describe(
      'Dashboard, JSON API, commit hook, metrics. Off when absent.',
    ).optional(),
    branches: z
      .record(BranchName, BranchConfigSchema, {
        error:
          'branches is a map of branch name → branch (indented keys like "staging:"), not a list',
      })
      .nullable()
      .describe('The branch sites, by name (the URL segment). May be empty.')
      .optional(),
    on_sites_changed: z
      .string()
      .min(1)
      .describe(
        "Shell command run (in ci.yaml's directory, killed after 2 minutes) when a pattern's sites come or go; `$STAGEPOST_SITES_ADDED` and `$STAGEPOST_SITES_RETIRED` name them.",
      )
      .meta({
        examples: [
          'stagepost proxy-config > /etc/nginx/snippets/stagepost.conf && nginx -s reload',
        ],
      })
      .optional(),
    jobs: z
      .record(JobName, JobConfigSchema, { error: 'jobs is a map of job name → job' })
      .nullable()
      .describe('Scheduled commands, by name.')
      .optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof ConfigSchema>;
export type RawBranch = z.infer<typeof BranchConfigSchema>;
export type RawMatch = z.infer<typeof MatchSchema>;
export type RawSource = z.infer<typeof SourceConfigSchema>;
export type RawJob = z.infer<typeof JobConfigSchema>;
export type RawStep = z.infer<typeof StepConfigSchema>;
export type RawHealth = z.infer<typeof HealthSettingsSchema>;
export type RawNotifier = z.infer<typeof NotifierConfigSchema>;
