/**
 * The rules that span several keys (SPEC "Rules check enforces"), over the
 * parts of ci.yaml that passed the schema, so that a schema problem in one
 * branch does not hide a rule problem in another.
 */
import path from 'node:path';
import {
  SOURCE_KEYS,
  type RawBranch,
  type RawHealth,
  type RawJob,
  type RawSource,
} from './schema.js';
import { unknownKeyMessage, type PathProblem } from './problems.js';

export type RuleBranch = Omit<RawBranch, 'sources'> & { sources: Array<RawSource | undefined> };

export interface RuleInput {
  /** Directory of ci.yaml. */
  dir: string;
  /** state_dir as written (default `.stagepost`), relative to `dir`. */
  stateDir?: string;
  smtpRelay?: string;
  health?: RawHealth;
  /** Branches that passed the schema, with `undefined` for each source that did not. */
  branches: Array<[string, RuleBranch]>;
  /** Every branch name written, valid or not (so a broken branch does not make jobs fail too). */
  branchNames: string[];
  jobs: Array<[string, Pick<RawJob, 'branches'>]>;
  /** A `cluster:` section is written: every branch names its host. */
  cluster?: boolean;
}

const BUILT_IN_VCS = ['git', 'svn'];
const PLUGIN_PATH = /^(\.{1,2}\/|\/)/;
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** The environment-variable suffix of a source (`STAGEPOST_REV_<SUFFIX>`). */
export const envSuffix = (name: string) => name.toUpperCase().replace(/[-.]/g, '_');

export function checkRules(input: RuleInput): PathProblem[] {
  const problems: PathProblem[] = [];
  const at = (p: Array<string | number>, message: string) =>
    problems.push({ path: ['branches', ...p], message });

  const dirs = new Map<string, string>();
  const ports = new Map<number, string>();
  const smtpPorts = new Map<number, string>();
  const mailin = new Map<string, string>();

  for (const [name, b] of input.branches) {
    const dir = path.resolve(input.dir, b.dir);
    const sameDir = dirs.get(dir);
    if (sameDir)
      at(
        [name, 'dir'],
        `branches ${sameDir} and ${name} share the directory ${dir} — give each branch its own dir`,
      );
    else dirs.set(dir, name);

    if (input.cluster && !b.host)
      at(
        [name],
        `branch ${name} has no host: — with cluster: every branch names the host that holds its site (e.g. "host: staging1")`,
      );
    else if (!input.cluster && b.host)
      at(
        [name, 'host'],
        `host: places a branch on one host of a cluster, but ci.yaml has no cluster: section — add one, or remove host:`,
      );
    if (Array.isArray(b.host) && !b.match)
      at(
        [name, 'host'],
        `a list of hosts is for a pattern (an entry with match:); branch ${name} is one site — name one host`,
      );
    if (b.match) checkPattern(name, b, at);
    else {
      if (typeof b.port === 'string')
        at(
          [name, 'port'],
          `port ${b.port} is a range, which only a pattern (an entry with match:) has — give branch ${name} one port`,
        );
      for (const key of ['slots', 'idle', 'keep_dir'] as const)
        if (b[key] !== undefined)
          at(
            [name, key],
            `${key} is for a pattern (an entry with match:); branch ${name} is one site — remove ${key}`,
          );
    }
    if (typeof b.port === 'number') {
      const other = ports.get(b.port);
      if (other)
        at(
          [name, 'port'],
          `port ${b.port} is already the port of branch ${other} — every branch's app server needs its own port`,
        );
      else ports.set(b.port, name);
    }

    checkSources(name, b.sources, at, b.match?.source);
    checkDirPlace(name, dir, input, at);

    const customers = b.customers ?? [];
    customers.forEach((c, i) => {
      if (customers.indexOf(c) !== i)
        at([name, 'customers', i], `customer ${c} is listed twice — remove one`);
    });
    (b.mailin ?? []).forEach((c, i) => {
      if (!customers.includes(c))
        at(
          [name, 'mailin', i],
          `mail-in customer ${c} is not a customer of ${name} — add it to customers: or remove it from mailin:`,
        );
      const other = mailin.get(c);
      if (other && other !== name)
        at(
          [name, 'mailin', i],
          `customer ${c} is in mailin of both ${other} and ${name}; mail-in is processed by one branch per customer — remove it from one of them`,
        );
      else mailin.set(c, name);
    });

    if (b.mailout && b.smtp_port === undefined)
      at(
        [name, 'mailout'],
        "mailout: true relays the mail the branch's catcher caught, but the branch has no smtp_port — add one, or remove mailout",
      );
    if (b.mailout && !input.smtpRelay)
      at(
        [name, 'mailout'],
        'mailout: true needs site.smtp_relay (where the mail really goes) — add e.g. "smtp_relay: smtp://localhost:25" under site:',
      );

    checkHealth(name, b, input.health, at);
  }

  // Ports second, so a smtp_port may clash with the app port of a later branch too.
  for (const [name, b] of input.branches) {
    if (b.smtp_port === undefined) continue;
    const other = smtpPorts.get(b.smtp_port);
    if (other)
      at(
        [name, 'smtp_port'],
        `smtp_port ${b.smtp_port} is already the mail catcher of branch ${other} — every branch needs its own smtp_port`,
      );
    else smtpPorts.set(b.smtp_port, name);
    const app = ports.get(b.smtp_port);
    if (app)
      at(
        [name, 'smtp_port'],
        `smtp_port ${b.smtp_port} is the app port of branch ${app} — choose another port for the mail catcher`,
      );
  }

  checkNestedDirs(dirs, at);

  const branchNames = new Set(input.branchNames);
  for (const [name, job] of input.jobs) {
    if (job.branches === 'all') continue;
    job.branches.forEach((b, i) => {
      if (!branchNames.has(b))
        problems.push({
          path: ['jobs', name, 'branches', i],
          message: `job ${name} names branch ${b}, which is not in branches: — known: ${input.branchNames.join(', ') || '(none)'}`,
        });
    });
  }
  return problems;
}

type At = (p: Array<string | number>, message: string) => void;

/** A pattern makes many sites from one entry: what every site would share must not be fixed. */
function checkPattern(name: string, b: RuleBranch, at: At): void {
  const match = b.match!;
  const source = b.sources.find((s) => s?.name === match.source);
  const names = b.sources.flatMap((s) => (s ? [s.name] : []));
  if (!source && names.length === b.sources.length)
    at(
      [name, 'match', 'source'],
      `match.source ${match.source} is not a source of ${name} — name one of: ${names.join(', ')}`,
    );
  if (source && source.vcs !== 'git')
    at(
      [name, 'match', 'source'],
      `match.source ${match.source} is a ${source.vcs} source; patterns follow the branches of a git remote`,
    );
  if (source?.ref !== undefined) {
    const i = b.sources.indexOf(source);
    at(
      [name, 'sources', i, 'ref'],
      `source ${source.name} is matched by the pattern, so its ref is each matching branch — remove ref`,
    );
  }
  if (typeof b.port === 'number')
    at(
      [name, 'port'],
      `every site of pattern ${name} would get port ${b.port} — give a range, like "7000-7099"`,
    );
  if (b.smtp_port !== undefined)
    at(
      [name, 'smtp_port'],
      `every site of pattern ${name} would share smtp_port ${b.smtp_port} — remove it from the pattern`,
    );
  if ((b.mailin ?? []).length > 0)
    at(
      [name, 'mailin'],
      `a customer's mail-in goes to one branch, not to every site of pattern ${name} — list it in mailin of a branch written out`,
    );
  if (!b.dir.includes('{branch}'))
    at(
      [name, 'dir'],
      `the sites of pattern ${name} would share the directory ${b.dir} — put {branch} in it, like /srv/staging/review/{branch}`,
    );
}

/**
 * A branch dir is made, checked out into and cleaned by its builds: it must
 * not hold ci.yaml or the state of stagepost (`.`, `/`, state_dir or a parent
 * of them), nor be state_dir's inside.
 */
function checkDirPlace(name: string, dir: string, input: RuleInput, at: At): void {
  const stateDir = path.resolve(input.dir, input.stateDir ?? '.stagepost');
  const within = (inner: string, outer: string) =>
    inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
  const place =
    dir === path.parse(dir).root
      ? 'the root directory'
      : within(input.dir, dir)
        ? `the directory of ci.yaml${dir === input.dir ? '' : ' or a parent of it'}`
        : within(stateDir, dir) || within(dir, stateDir)
          ? `state_dir (${stateDir}) or a place inside or above it`
          : null;
  if (place)
    at(
      [name, 'dir'],
      `dir ${dir} of branch ${name} is ${place}: its checkouts and steps would write over stagepost's own files — give the branch a directory of its own, like ./sites/${name}`,
    );
}

/**
 * A branch dir inside another branch's dir (or its checkouts) would be
 * overwritten or cleaned by that branch's builds. Each dir's parents are
 * looked up in the map of dirs: linear in the number of branches.
 */
function checkNestedDirs(dirs: Map<string, string>, at: At): void {
  for (const [dir, name] of dirs) {
    for (let below = dir, up = path.dirname(dir); up !== below; below = up, up = path.dirname(up)) {
      const outer = dirs.get(up);
      if (outer) {
        at(
          [name, 'dir'],
          `dir ${dir} of branch ${name} is inside the dir of branch ${outer} (${up}), whose checkouts and steps would reach into it — put the two side by side`,
        );
        break;
      }
    }
  }
}

function checkSources(
  branch: string,
  sources: Array<RawSource | undefined>,
  at: At,
  matched?: string,
): void {
  const paths = new Map<string, string>();
  const suffixes = new Map<string, string>();
  sources.forEach((s, i) => {
    if (!s) return;
    const here = [branch, 'sources', i];
    const other = suffixes.get(envSuffix(s.name));
    if (other)
      at(
        [...here, 'name'],
        other === s.name
          ? `two sources of ${branch} are named ${s.name} — rename one`
          : `sources ${other} and ${s.name} both become STAGEPOST_REV_${envSuffix(s.name)} — rename one`,
      );
    else suffixes.set(envSuffix(s.name), s.name);

    const written = s.path ?? `src/${s.name}`;
    const normal = path.normalize(written).replace(/(.)[\\/]+$/, '$1');
    if (path.isAbsolute(written))
      at(
        [...here, 'path'],
        `source path ${written} is absolute — write it relative to the branch dir, like src/${s.name}`,
      );
    else if (normal === '..' || normal.startsWith(`..${path.sep}`))
      at(
        [...here, 'path'],
        `source path ${written} leaves the branch dir — keep it inside, like src/${s.name}`,
      );
    else {
      const same = paths.get(normal);
      if (same)
        at(
          [...here, 'path'],
          `sources ${same} and ${s.name} of ${branch} share the path ${written} — give each its own path`,
        );
      else paths.set(normal, s.name);
    }

    if (BUILT_IN_VCS.includes(s.vcs)) {
      for (const key of Object.keys(s)) {
        if (!(SOURCE_KEYS as readonly string[]).includes(key)) unknownSourceKey(at, here, key);
      }
      if (s.vcs === 'git' && !s.ref && s.name !== matched)
        at(
          [...here, 'ref'],
          'git sources need a ref (the branch or tag to build) — add "ref: main"',
        );
      if (s.vcs === 'svn' && s.ref)
        at(
          [...here, 'ref'],
          'svn sources have no ref: the URL is the branch — put the branch in url (…/branches/NAME) and remove ref',
        );
    } else if (!PLUGIN_PATH.test(s.vcs) && !PACKAGE_NAME.test(s.vcs)) {
      const hint = BUILT_IN_VCS.find((v) => v === s.vcs.toLowerCase().trim());
      at(
        [...here, 'vcs'],
        `vcs "${s.vcs}" is not git, svn, a plugin path (./plugins/hg.js) or a package name${hint ? ` — did you mean "${hint}"?` : ''}`,
      );
    }
  });
}

function unknownSourceKey(at: At, here: Array<string | number>, key: string): void {
  at(
    [...here, key],
    unknownKeyMessage(key, [...SOURCE_KEYS]).replace(
      /^unknown key/,
      'unknown key for a git or svn source:',
    ),
  );
}

function checkHealth(name: string, b: RuleBranch, global: RawHealth | undefined, at: At): void {
  if (b.health === false || (!b.health && !global)) return;
  if (!b.health?.url && !global?.url)
    at(
      [name, ...(b.health ? ['health'] : [])],
      'health checks need a url — add "url: http://127.0.0.1:{port}/{customer}/" under health:',
    );
  const url = b.health?.url ?? global?.url ?? '';
  if (url.includes('{port}') && b.port === undefined)
    at(
      [name],
      `the health url uses {port}, but branch ${name} has no port — add "port: 6543" (its app server's port)`,
    );
}
