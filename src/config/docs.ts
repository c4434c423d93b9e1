/**
 * The config reference (docs/config.md) and the editor schema
 * (config/ci.schema.json), both rendered from the zod schemas the loader
 * uses, so neither can describe a key the loader does not know.
 */
import { z } from 'zod';
import { ConfigSchema, DEFAULTS } from './schema.js';
import { stepEnvironmentMarkdown } from './docs-steps.js';
import { EVENT_NAMES, type OptionDoc } from '../plugin-api.js';

/** A notifier and its documented options (the built-in ones: see notifier-docs.ts). */
export interface NotifierDoc {
  name: string;
  options: readonly OptionDoc[];
}

type JsonSchema = {
  type?: string;
  anyOf?: JsonSchema[];
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  required?: string[];
  default?: unknown;
  description?: string;
  examples?: unknown[];
  [k: string]: unknown;
};

export function configJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input' }) as JsonSchema;
  return {
    $schema: schema.$schema,
    title: 'stagepost ci.yaml',
    description:
      'Configuration of stagepost, the staging server for every branch. Reference: docs/config.md.',
    ...schema,
  };
}

export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

interface Row {
  key: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

const isDuration = (s: JsonSchema) =>
  !!s.anyOf &&
  s.anyOf.length === 2 &&
  s.anyOf.some((o) => o.type === 'number') &&
  s.anyOf.some((o) => o.type === 'string' && o.pattern?.includes('ms|s|m|h|d'));

const options = (s: JsonSchema) => (s.anyOf ?? []).filter((o) => o.type !== 'null');

function typeOf(s: JsonSchema): string {
  if (isDuration(s)) return 'duration';
  if (s.anyOf) return options(s).map(typeOf).join(' | ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(', ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object') return s.propertyNames ? 'map by name' : 'map';
  if (s.type === 'string' && s.pattern === '^[a-z0-9][a-z0-9._-]*$') return 'name';
  if (s.type === 'integer') return 'integer';
  return s.type ?? 'any';
}

/** The object schema a key's children live in: itself, an array's items, a record's values. */
function children(s: JsonSchema): Array<[string, JsonSchema, boolean]> {
  const objects = [s, ...options(s)].flatMap((o) =>
    o.type === 'array' && o.items ? [o.items] : [o],
  );
  for (const o of objects) {
    if (o.properties) {
      return Object.entries(o.properties).map(([k, v]) => [k, v, o.required?.includes(k) ?? false]);
    }
    if (o.propertyNames && typeof o.additionalProperties === 'object') {
      return [['<name>', o.additionalProperties, false]];
    }
  }
  return [];
}

// A branch's poll/builds/health keys default to the top-level value, not to the top-level default.
const OVERRIDES = /^branches\.<name>\.(poll|builds|health)$/;

function collect(s: JsonSchema, prefix: string, out: Row[]): void {
  for (const [key, child, required] of children(s)) {
    const isList = [child, ...options(child)].some(
      (o) => o.type === 'array' && o.items?.properties,
    );
    const path = prefix ? `${prefix}.${key}` : key;
    const dflt =
      OVERRIDES.test(prefix) && child.default !== undefined
        ? 'the top-level value'
        : code(child.default);
    out.push({
      key: path,
      type: typeOf(child),
      required,
      default: dflt,
      description: child.description ?? '',
    });
    collect(child, isList ? `${path}[]` : path, out);
  }
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (v: unknown) =>
  v === undefined ? '' : `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;

/** Who an email notifier mails besides `to`: the place operators look before trusting it. */
const COMMITTERS_DOC = [
  '## Mail to committers',
  '',
  'An `email` notifier mails its `to` list and, with `committers`, the authors of the commits a build brought:',
  '',
  '- `committers: true`: every author (git author address; svn user through `authors`, else `<user>@authors_domain`), at most 20 per mail;',
  '- `committers: { domains: [example.com], addresses: [ann@partner.org] }`: only authors whose address is in one of these domains (or a subdomain of one) or is listed; use it to be sure mail reaches only the team;',
  '- `committers: false` (the default): `to` only.',
  '',
  "Only commits between the site's last finished build and this one count. A first build of a site (a new branch in ci.yaml, a `create`, a first start) has no such range: its mail goes to `to` alone, though it lists the latest commits. Jobs never mail committers.",
  '',
];

/** Patterns: the keys are in the tables; how they work together is here. */
const REVIEW_SITES_DOC = [
  '## Review sites',
  '',
  'A branch entry with `match: { source, refs }` is a pattern: each remote branch of that git source whose name matches the glob `refs` gets a site. The matched source has no `ref` (it is each branch); the other sources keep theirs. The same one query per repository and cycle that polls the branches finds them.',
  '',
  '- **Names.** A site is named after its branch, reduced to `[a-z0-9-]` (`feature/Foo_Bar` → `feature-foo-bar`) and at most 63 characters; a name taken by a branch of ci.yaml or another site gets a short hash of the full branch name (`feature-foo-1a2b3c`). `{branch}` anywhere in the entry (dir, steps, health, paths) is that name; `dir` must contain it. Names and ports are kept in `state_dir/sites.json`.',
  '- **Ports.** `port: 7000-7099` gives each site the lowest port of the range no branch or site has; a retired site frees its port.',
  '- **Slots.** With `slots: N`, the N branches whose new commits stagepost saw last (first seen counts as new) have sites; the others wait, listed as `waiting` in `/api/status`, `stagepost status` and the dashboard. `stagepost pin SITE` keeps a site: never retired or bumped, counted against the slots; `stagepost unpin SITE` undoes it (`state_dir/pins.json`).',
  '- **Retiring.** A site retires when its branch was missing from `match.retire_after` (default 3) successful answers in a row, went `idle`, or was bumped from its slot. A failed or timed-out answer never counts; a remote that lists no refs at all is an error of the pattern, not an empty list. An answer that would retire more than half of the sites of a pattern, or finds no matching branch at all, retires none and sends `retire-held`; `stagepost retire --confirm` lets it proceed at the next answer. A retired site leaves the config (its `teardown` steps run), its directory is removed unless `keep_dir: true`, and `retired` is sent to the notifiers (with `committers`, also to the authors of its last commits) with its URLs.',
  "- **Hooks.** `on_sites_changed` runs after sites came or went, `sh -c` in ci.yaml's directory, killed after 2 minutes; `STAGEPOST_SITES_ADDED` and `STAGEPOST_SITES_RETIRED` name the sites. `stagepost mail-config` prints a Postfix transport map (`<customer>.<site.mail_domain>  smtp:[127.0.0.1]:<smtp_port>` for each `mailin` customer) to regenerate there.",
  '- **Shared objects.** Sites of one git repository borrow its objects from a bare copy under `state_dir/plugins/git-objects` (alternates), so a new site fetches only what the copy lacks (docs/checkout.md).',
  '',
];

export function configMarkdown(notifiers: readonly NotifierDoc[] = []): string {
  const schema = configJsonSchema();
  const out: string[] = [
    '# ci.yaml reference',
    '',
    '<!-- Generated by `npm run docs` from src/config/schema.ts. Do not edit by hand. -->',
    '',
    'stagepost reads `--config PATH`, else `$STAGEPOST_CONFIG`, else `./ci.yaml`.',
    'Check a file with `stagepost check`. Editors that speak the YAML language server',
    'validate and complete it with `config/ci.schema.json`: put',
    '`# yaml-language-server: $schema=./config/ci.schema.json` on its first line.',
    '',
    '- **duration**: a string with a unit (`500ms`, `30s`, `5m`, `16h`, `1h30m`); a bare number is seconds.',
    '- **name** (branches, sources, customers, jobs): `[a-z0-9][a-z0-9._-]*` — they become URL segments and environment-variable suffixes.',
    '- Relative paths are relative to the directory of ci.yaml.',
    '- `${NAME}` in any string value is replaced by the environment variable NAME when the file is loaded; an unset variable is an error. The `run` of steps and jobs is exempt (the shell expands it when it runs). Substituted values are masked in every log, status and mail.',
    "- `${credential:NAME}` works the same way with a systemd credential: the content of `$CREDENTIALS_DIRECTORY/NAME` (the unit's `LoadCredential=NAME:PATH`), without its trailing newline. The value is in no process's environment. A missing one is an error that names the `LoadCredential=` line to add (docs/service.md).",
    "- Unknown keys are errors, except in a `notify` entry (the plugin's options) and in a source with a plugin `vcs`.",
    '',
  ];
  for (const [key, child, required] of children(schema)) {
    out.push(
      `## \`${key}\``,
      '',
      `${child.description ?? ''} Type: ${typeOf(child)}.${required ? ' **Required.**' : ''}`,
      '',
    );
    const rows: Row[] =
      children(child).length > 0
        ? []
        : [{ key, type: typeOf(child), required, default: code(child.default), description: '' }];
    collect(
      child,
      [child, ...options(child)].some((o) => o.type === 'array' && o.items?.properties)
        ? `${key}[]`
        : key,
      rows,
    );
    out.push('| key | type | default | description |', '| --- | --- | --- | --- |');
    for (const r of rows) {
      out.push(
        `| \`${r.key}\`${r.required ? ' (required)' : ''} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`,
      );
    }
    out.push('');
  }
  out.push(
    '## Rules',
    '',
    'Besides the types above, `stagepost check` (and every load) enforces:',
    '',
    '- a customer is in `mailin` of at most one branch, and only of a branch that serves it;',
    '- two branches never share a `dir` or a `port`; `smtp_port`s are unique and differ from every branch `port`;',
    '- two sources of a branch never share a `path` (or an environment-variable suffix); a source `path` stays inside the branch dir;',
    '- every source has `vcs` git, svn, or a plugin path/package, a `url`, and for git a `ref` (svn sources have no `ref`: the URL is the branch);',
    '- `mailout: true` needs `smtp_port` and `site.smtp_relay`;',
    "- a job's `branches` name existing branches; its `schedule` is a valid cron expression;",
    "- a health `url` with `{port}` needs the branch's `port`;",
    "- a branch `dir` is not `/`, the directory of ci.yaml or a parent of it, `state_dir` (or inside or above it), nor inside another branch's `dir`;",
    '- a duration is at most 24d (2147483647 ms, the longest wait Node timers honour), and a timeout or interval is more than 0;',
    '- a port (also in `http.listen`) is 1 to 65535; a file whose aliases expand too far (a "billion laughs") is refused;',
    '- a pattern (`match:`) names a git source of its own without `ref`, has `{branch}` in `dir`, a port range rather than a port, and no `smtp_port` or `mailin`; `slots`, `idle`, `keep_dir` and port ranges are for patterns only.',
    '',
    "Per branch, `poll` and `builds` keys override the top-level ones key by key, `steps`, `create` and `teardown` replace them, `health` keys override the top-level `health` (or `health: false` turns it off), and `notify` entries are added to the top-level ones. A step without `timeout` gets its branch's `builds.step_timeout`.",
    '',
    ...REVIEW_SITES_DOC,
    ...notifierSection(notifiers),
    ...COMMITTERS_DOC,
    ...GUIDE,
  );
  out.push(...stepEnvironmentMarkdown());
  return out.join('\n');
}

const EVENTS: Record<string, string> = {
  started: 'a build started',
  success: 'every successful build',
  failure: 'every failing build (failure or timeout)',
  fixed: 'a success right after a failing build (sent with `success`)',
  'still-failing': 'a failing build right after a failing build (sent with `failure`)',
  'job-failure': 'a job run that failed or timed out',
  'config-error': 'an edit of ci.yaml was rejected; the daemon keeps the last good config',
  'ref-missing':
    "a source's git ref (or svn URL) is gone from its remote: a poll error of its branch until it is back; sent once",
  'ref-back': 'that ref is on the remote again; sent once',
};

function notifierSection(notifiers: readonly NotifierDoc[]): string[] {
  const out = [
    '## Notifiers',
    '',
    "Each `notify` entry names a plugin with `use` (a built-in name, a path, or a package name), the events it sends with `on`, and the plugin's own options beside them. One message per build (or job run) carries every event of it that `on` picks.",
    '',
    `Events (default \`on\`: ${DEFAULTS.notifyOn.map((e) => `\`${e}\``).join(', ')}):`,
    '',
    '| event | sent when |',
    '| --- | --- |',
    ...EVENT_NAMES.map((e) => `| \`${e}\` | ${cell(EVENTS[e] ?? '')} |`),
    '',
  ];
  for (const n of notifiers) {
    out.push(
      `### \`use: ${n.name}\``,
      '',
      '| option | type | default | description |',
      '| --- | --- | --- | --- |',
      ...n.options.map(
        (o) =>
          `| \`${o.key}\`${o.required ? ' (required)' : ''} | ${cell(o.type)} | ${o.default ? `\`${cell(o.default)}\`` : ''} | ${cell(o.description)} |`,
      ),
      '',
    );
  }
  return out;
}

/** How the keys play together: what a reader of the tables above still asks. */
const GUIDE = [
  '## New branches and `create`',
  '',
  'Adding a branch to ci.yaml is enough: the daemon polls it, and its first build makes the directory, checks the sources out, runs the `create` steps, then the `steps`. `stagepost create BRANCH` does the same in the foreground, when no daemon runs or to watch it happen; it refuses a branch whose directory exists (use `stagepost update BRANCH --force` to rebuild one).',
  '',
  '## Removing a branch',
  '',
  "A branch removed from ci.yaml stops being polled; its running build (if any) finishes. Then its `teardown` steps run in its directory (global `teardown`, or the branch's own), bounded by their timeouts and recorded in the branch's history with a log, like any build: stop its app server there, remove the directory if it should go. **Without `teardown` steps nothing else happens: its app server keeps running and its directory stays.** A branch removed while no daemon ran gets no teardown: run `stagepost teardown BRANCH` before removing it. After a teardown that removed the directory, `stagepost create BRANCH` makes the site again.",
  '',
  '## Jobs',
  '',
  "A job (`jobs:`) runs its command on a schedule for each of its branches, through the same queue as builds, so it never overlaps a build of the same branch. A job's runs have their own history, numbering and retention, apart from the branch's builds: a job that runs every minute never pushes builds out of `builds.keep`. Its failures go to the notifiers as `job-failure` (`notify_on`). `stagepost job NAME` runs one now.",
  '',
  '## Mail-in (`mailin`)',
  '',
  "`mailin` lists the customers whose incoming mail this branch processes (a customer's mail-in is handled by one branch only; `check` enforces it). stagepost itself receives no mail for them: it hands the list to the steps as `STAGEPOST_MAILIN` (space separated), so a step can set up the mail-in processing of those customers and leave the others' off. Outgoing mail of a branch is another matter: see `smtp_port` (the mail catcher) and `mailout`.",
  '',
];
