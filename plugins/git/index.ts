import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  describeFailure,
  StagepostError,
  type CheckoutOptions,
  type Commit,
  type PluginContext,
  type QueryOptions,
  type RemoteRevision,
  type RunResult,
  type SourceSpec,
  type VcsPlugin,
} from 'stagepost/plugin-api';
import { credentialArgs, splitPassword, type GitRemoteUrl } from './credentials.js';
import { gitEnvironment } from './env.js';
import { LOG_FORMAT, parseLog } from './log.js';
import {
  invalidRef,
  lsRemotePatterns,
  parseLsRemote,
  refCandidates,
  refLookups,
  resolveRef,
} from './refs.js';
import { globToRegExp, matchingBranches } from './glob.js';
import { localRepositoryPath, lsRefsRequest, parseLsRefs } from './upload-pack.js';

export interface GitPluginOptions {
  /** Environment over process.env for every git child (tests; an operator's GIT_SSH_COMMAND). */
  env?: NodeJS.ProcessEnv;
  /** Called with the argv of every git child before it starts (tests count queries with it). */
  onRun?: (argv: readonly string[]) => void;
  /** Commits listed when there is no usable previous revision (first build, force-push). */
  fallbackCommits?: number;
}

const HEX = /^[0-9a-f]{7,64}$/;

interface RunGit {
  cwd?: string;
  remote?: GitRemoteUrl;
  timeoutMs: number;
  signal?: AbortSignal;
  onOutput?: (chunk: string) => void;
  onSpawn?: (pgid: number) => void;
}

/** A remote query's argv (credentials included), its environment and stdin, made once per repository. */
interface GitQuery {
  args: string[];
  env: NodeJS.ProcessEnv;
  input?: string;
}

/** What one repository's poll needs that does not depend on the answer. */
interface Prepared {
  remote: GitRemoteUrl;
  invalid: Array<string | null>;
  /** Per source, a pattern's glob (a `match` source), else null. */
  globs: Array<RegExp | null>;
  /** Per source, the names that answer it (refLookups); null for an invalid ref. */
  lookups: Array<string[] | null>;
  /** The last answers: an unchanged one is handed out again, not made anew (1,000 branches, every second). */
  answers: RemoteRevision[];
  /** The output they came from (upload-pack's or ls-remote's): the same output again means the same answers. */
  output?: string;
  /** null when no source has a usable ref. */
  lsRemote: GitQuery | null;
  /** A repository on this machine: upload-pack, until it fails where ls-remote does not. */
  local: GitQuery | null;
}

/**
 * The git VCS plugin: polls with one `git ls-remote` per repository (for a
 * repository on this machine, the `git upload-pack` ls-remote would start) and keeps
 * checkouts with plain git commands. git is called directly (not through
 * simple-git) so every call is an argv array through `run`, with a timeout that
 * ends the whole process group (git's ssh and remote helpers included).
 */
export function createGitPlugin(ctx: PluginContext, options: GitPluginOptions = {}): VcsPlugin {
  const { env } = gitEnvironment(() => ctx.sshWords(), { ...process.env, ...options.env });
  const fallbackCommits = options.fallbackCommits ?? 10;

  const git = (gitArgs: string[], o: RunGit): Promise<RunResult> => {
    const credentials = o.remote ? credentialArgs(o.remote) : { args: [], env: {} };
    const args = [...credentials.args, ...gitArgs];
    options.onRun?.(['git', ...args]);
    const onOutput = o.onOutput;
    return ctx.run('git', args, {
      cwd: o.cwd,
      env: { ...env, ...credentials.env },
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onSpawn: o.onSpawn,
      onOutput: onOutput && ((chunk) => onOutput(ctx.redact(chunk))),
    });
  };
  const query = (q: GitQuery, o: QueryOptions): Promise<RunResult> => {
    options.onRun?.(['git', ...q.args]);
    return ctx.run('git', q.args, {
      env: q.env,
      input: q.input,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
    });
  };
  const ok = (r: RunResult) => r.exitCode === 0 && !r.timedOut && !r.aborted;
  // git's first "fatal:" says what went wrong; its last lines are often advice
  // ("Please make sure you have the correct access rights and the repository exists.").
  const why = (r: RunResult) => {
    const lines = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    const line = lines.find((l) => /^(fatal|error):/.test(l)) ?? lines.pop();
    return ctx.redact(line && !r.timedOut ? `${describeFailure(r)}: ${line}` : describeFailure(r));
  };
  const shown = (url: string) => ctx.redact(url);
  const checkUrl = (url: string, code: 'EREMOTE' | 'ECHECKOUT') => {
    if (!url || url.startsWith('-'))
      throw new StagepostError(
        code,
        `git: "${shown(url)}" is not a repository URL; fix the source's url in ci.yaml`,
      );
  };

  // The Poller passes the same array for a repository every cycle: what does
  // not depend on the answer (checks, the ls-remote patterns) is worked out once.
  const prepared = new WeakMap<SourceSpec[], Prepared>();
  const prepare = (sources: SourceSpec[]): Prepared => {
    let p = prepared.get(sources);
    if (!p) {
      const remote = splitPassword(sources[0].url);
      checkUrl(remote.url, 'EREMOTE');
      const globs = sources.map((s) => (s.match === undefined ? null : globToRegExp(s.match)));
      const invalid = sources.map((s, i) => (globs[i] ? null : invalidRef(s.ref)));
      const valid = sources.filter((_, i) => invalid[i] === null && !globs[i]).map((s) => s.ref!);
      // A pattern needs every branch of the remote: the same one query, without patterns.
      const anyGlob = globs.some((g) => g !== null);
      const patterns = anyGlob ? [] : lsRemotePatterns(valid);
      const asks = valid.length > 0 || anyGlob;
      const dir = asks ? localRepositoryPath(remote.url) : null;
      const credentials = credentialArgs(remote);
      const queryEnv = { ...env, ...credentials.env };
      p = {
        remote,
        invalid,
        answers: [],
        globs,
        lookups: sources.map((s, i) =>
          invalid[i] === null && !globs[i] ? refLookups(s.ref!) : null,
        ),
        lsRemote: asks
          ? {
              args: [...credentials.args, 'ls-remote', '--', remote.url, ...patterns],
              env: queryEnv,
            }
          : null,
        local:
          dir === null
            ? null
            : {
                args: ['upload-pack', '--stateless-rpc', '--', dir],
                env: { ...queryEnv, GIT_PROTOCOL: 'version=2' },
                input: lsRefsRequest(patterns),
              },
      };
      prepared.set(sources, p);
    }
    return p;
  };
  const queryFailed = (url: string, r: RunResult) =>
    new StagepostError(
      'EREMOTE',
      `git ls-remote ${shown(url)} failed: ${why(r)} — check the URL, the network and this host's access (ssh key, credentials); the next poll retries`,
      { details: { timedOut: r.timedOut } },
    );

  /**
   * Sites of one repository share its objects: a bare copy under state_dir,
   * made by the first checkout and brought up to date by each later one, is
   * the new checkout's alternate object store, so its own fetch only gets
   * what the copy lacks. Anything going wrong here leaves the checkout to
   * fetch everything itself, as before.
   */
  const borrowObjects = async (
    remote: GitRemoteUrl,
    o: CheckoutOptions,
    left: () => number,
  ): Promise<void> => {
    const key = createHash('sha256').update(remote.url).digest('hex').slice(0, 16);
    const shared = path.join(ctx.stateDir, 'git-objects', `${key}.git`);
    const run = { remote, signal: o.signal, onOutput: o.onOutput, onSpawn: o.onSpawn };
    try {
      if (!existsSync(shared)) {
        mkdirSync(path.dirname(shared), { recursive: true });
        const tmp = `${shared}.${process.pid}.${Date.now()}.tmp`;
        const r = await git(['clone', '--bare', '--no-tags', '-q', '--', remote.url, tmp], {
          ...run,
          timeoutMs: left(),
        });
        // Never pruned: checkouts rely on its objects, a force-pushed branch's old ones too.
        if (ok(r)) await git(['config', 'gc.auto', '0'], { cwd: tmp, timeoutMs: left() });
        if (ok(r) && !existsSync(shared)) renameSync(tmp, shared);
        else rmSync(tmp, { recursive: true, force: true });
      } else {
        await git(['fetch', '-q', '--no-tags', 'origin', '+refs/heads/*:refs/heads/*'], {
          ...run,
          cwd: shared,
          timeoutMs: left(),
        });
      }
      if (existsSync(path.join(shared, 'objects')))
        writeFileSync(
          path.join(o.dir, '.git', 'objects', 'info', 'alternates'),
          `${path.join(shared, 'objects')}\n`,
        );
    } catch (err) {
      ctx.log.warn(
        { repository: shown(remote.url), error: ctx.redact(String(err)) },
        'shared objects not used; this checkout fetches everything itself',
      );
    }
  };

  const hasCommit = async (dir: string, revision: string, timeoutMs: number) =>
    ok(await git(['cat-file', '-e', `${revision}^{commit}`], { cwd: dir, timeoutMs }));

  return {
    kind: 'vcs',
    name: 'git',
    shortRevision: (revision) => revision.slice(0, 7),
    repositoryKey: (source) => source.url,

    async remoteRevisions(sources: SourceSpec[], o: QueryOptions): Promise<RemoteRevision[]> {
      if (sources.length === 0) return [];
      const p = prepare(sources);
      const { remote, invalid } = p;
      const url = remote.url;
      let table: Map<string, string> | null = null;
      let output = '';
      if (p.local !== null) {
        const r = await query(p.local, o);
        if (r.timedOut || r.aborted) throw queryFailed(url, r);
        // Any other failure, or an answer that is not ls-refs', is asked again
        // with ls-remote, which also words an error as users know it.
        if (ok(r)) {
          if (r.stdout === p.output) return p.answers;
          table = parseLsRefs(r.stdout);
          output = r.stdout;
        }
      }
      if (table === null && p.lsRemote !== null) {
        const r = await query(p.lsRemote, o);
        if (!ok(r)) throw queryFailed(url, r);
        if (p.local !== null) {
          // upload-pack failed where ls-remote did not (a bundle file, a sha256
          // repository, a git without protocol v2): ls-remote from now on.
          ctx.log.info(
            { repository: shown(url) },
            'polling with git ls-remote: upload-pack did not answer for this local repository',
          );
          p.local = null;
        }
        // ls-remote's output cannot equal upload-pack's: tabs against length prefixes.
        if (r.stdout === p.output) return p.answers;
        output = r.stdout;
        table = parseLsRemote(r.stdout);
      }
      table ??= new Map();
      p.output = output;
      const previous = p.answers;
      p.answers = sources.map((s, i): RemoteRevision => {
        const before = previous[i];
        const reason = invalid[i];
        if (reason) return before ?? Object.freeze({ missing: true, reason });
        const glob = p.globs[i];
        if (glob) {
          // A remote with no refs at all is a broken or half-made mirror, not one whose
          // branches were all deleted: say missing, so that no site counts it.
          if (table.size === 0)
            return before !== undefined && 'missing' in before
              ? before
              : Object.freeze({ missing: true, reason: `${shown(url)} lists no refs at all` });
          const refs = matchingBranches(table, glob);
          const digest = createHash('sha256').update(JSON.stringify(refs)).digest('hex');
          return before !== undefined && 'revision' in before && before.revision === digest
            ? before
            : Object.freeze({ revision: digest, refs: Object.freeze(refs) });
        }
        const revision = resolveRef(p.lookups[i]!, table);
        if (revision)
          return before !== undefined && 'revision' in before && before.revision === revision
            ? before
            : Object.freeze({ revision });
        return before !== undefined && 'missing' in before
          ? before
          : Object.freeze({
              missing: true,
              reason: `no branch or tag "${s.ref}" on ${shown(url)}`,
            });
      });
      return p.answers;
    },

    async checkout(source: SourceSpec, revision: string, o: CheckoutOptions): Promise<void> {
      const deadline = Date.now() + o.timeoutMs;
      const left = () => Math.max(1, deadline - Date.now());
      const fail = (what: string, r: RunResult): never => {
        throw new StagepostError('ECHECKOUT', `git ${what} in ${o.dir} failed: ${why(r)}`, {
          details: { timedOut: r.timedOut },
        });
      };
      // Every git of the checkout that may take long shows its output and records its group.
      const watched = { cwd: o.dir, signal: o.signal, onOutput: o.onOutput, onSpawn: o.onSpawn };
      const step = async (what: string, args: string[]) => {
        const r = await git(args, { ...watched, timeoutMs: left() });
        return ok(r) ? r : fail(what, r);
      };
      if (!HEX.test(revision))
        throw new StagepostError('ECHECKOUT', `git: "${revision}" is not a commit id`);
      // Progress output feeds the core's no-progress watchdog; over http, curl
      // itself ends a transfer that moves no byte for the same time.
      const stall = o.stallMs
        ? ['-c', 'http.lowSpeedLimit=1', '-c', `http.lowSpeedTime=${Math.ceil(o.stallMs / 1000)}`]
        : [];
      const remote = splitPassword(source.url);
      checkUrl(remote.url, 'ECHECKOUT');
      const badRef = invalidRef(source.ref);
      if (badRef) throw new StagepostError('ECHECKOUT', `git: ${badRef}`);

      if (!existsSync(path.join(o.dir, '.git'))) {
        mkdirSync(o.dir, { recursive: true });
        await step('init', ['init', '-q']);
        await step('remote add', ['remote', 'add', 'origin', remote.url]);
        await borrowObjects(remote, o, left);
      } else {
        const current = await git(['remote', 'get-url', 'origin'], {
          cwd: o.dir,
          timeoutMs: left(),
        });
        if (!ok(current)) await step('remote add', ['remote', 'add', 'origin', remote.url]);
        // A `switch` to another repository: fetch from the new one from now on.
        else if (current.stdout.trim() !== remote.url)
          await step('remote set-url', ['remote', 'set-url', 'origin', remote.url]);
      }

      if (!(await hasCommit(o.dir, revision, left()))) {
        // Fetch the ref into a ref of our own, so its history stays (commitsBetween needs it).
        for (const full of refCandidates(source.ref!)) {
          const r = await git(
            [
              ...stall,
              'fetch',
              '--progress',
              '--no-tags',
              '--force',
              'origin',
              `+${full}:refs/stagepost/${full}`,
            ],
            { ...watched, remote, timeoutMs: left() },
          );
          if (ok(r)) break;
          if (!/couldn't find remote ref/i.test(r.stderr))
            fail(`fetch ${full} from ${shown(remote.url)}`, r);
        }
        // The ref may have moved on or been force-pushed since the poll: ask for the commit itself.
        if (!(await hasCommit(o.dir, revision, left()))) {
          const r = await git([...stall, 'fetch', '--progress', '--no-tags', 'origin', revision], {
            ...watched,
            remote,
            timeoutMs: left(),
          });
          if (!ok(r)) {
            throw new StagepostError(
              'ECHECKOUT',
              `git: commit ${revision} of "${source.ref}" is not on ${shown(remote.url)} any more (force-pushed?): ${why(r)}; the next poll picks up the new revision`,
            );
          }
        }
      }
      await step(`checkout ${revision}`, [
        '-c',
        'advice.detachedHead=false',
        'checkout',
        '--force',
        '--detach',
        revision,
      ]);
    },

    async commitsBetween(
      _source: SourceSpec,
      from: string | null,
      to: string,
      o: CheckoutOptions & { limit: number },
    ): Promise<Commit[]> {
      if (!HEX.test(to) || (from !== null && !HEX.test(from)))
        throw new StagepostError('ECHECKOUT', `git: not a commit id: ${HEX.test(to) ? from : to}`);
      if (from === to) return [];
      if (!existsSync(path.join(o.dir, '.git')))
        throw new StagepostError(
          'ECHECKOUT',
          `git: ${o.dir} is not a checkout; check it out before listing commits`,
        );
      // `from..to` is right even after a force-push: it lists what `to` has beyond
      // the merge-base. Only a `from` we never had leaves nothing to compare with.
      const known = from !== null && (await hasCommit(o.dir, from, o.timeoutMs));
      const count = known ? o.limit : Math.min(o.limit, fallbackCommits);
      const range = known ? `${from}..${to}` : to;
      const r = await git(
        [
          '-c',
          'log.showSignature=false',
          'log',
          '-z',
          LOG_FORMAT,
          `--max-count=${count}`,
          '--end-of-options',
          range,
          '--',
        ],
        { cwd: o.dir, timeoutMs: o.timeoutMs, signal: o.signal },
      );
      if (!ok(r))
        throw new StagepostError('ECHECKOUT', `git log ${range} in ${o.dir} failed: ${why(r)}`);
      return parseLog(r.stdout);
    },
  };
}

export default function gitPlugin(ctx: PluginContext): VcsPlugin {
  return createGitPlugin(ctx);
}
