import { existsSync, mkdirSync } from 'node:fs';
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
  type SshWords,
  type VcsPlugin,
} from 'stagepost/plugin-api';
import { authArgs, sameUrlKey, splitCredentials, type SvnTarget } from './credentials.js';
import { parseInfo, parseLog } from './xml.js';

export interface SvnPluginOptions {
  /** Environment over process.env for every svn child. */
  env?: NodeJS.ProcessEnv;
  /** Called with the argv of every svn child before it starts (tests count queries with it). */
  onRun?: (argv: readonly string[]) => void;
  /** Commits listed when there is no usable previous revision (first build). */
  fallbackCommits?: number;
}

const REVISION = /^\d+$/;
/** svn's codes for "this target does not exist" (the other targets are still answered). */
const NOT_FOUND = /\b[WE]170000\b/;
const ALLOWED_ERRORS = new Set(['E200009', 'W170000', 'E170000']);

/** A word of a shown command line, quoted where a shell would need it. */
const shellWord = (w: string) =>
  /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;

/** A trailing `@` keeps an `@` inside a path from being read as a peg revision. */
const target = (p: string) => (p.includes('@') ? `${p}@` : p);

/** The repository root by the standard layout, until svn tells the real one. */
function guessRoot(url: string): string {
  const m = /^(.*?)\/(?:trunk(?:\/|$)|branches\/|tags\/)/.exec(url);
  return (m ? m[1] : url).replace(/\/+$/, '');
}

/**
 * The environment of every svn child: English messages (stderr is parsed)
 * without forcing LC_CTYPE=C, which would make svn refuse non-ASCII file
 * names; and for svn+ssh:// one shared ssh connection per host, as git has.
 */
export function svnEnvironment(
  sshWords: () => SshWords,
  base: NodeJS.ProcessEnv,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, LC_MESSAGES: 'C', LANGUAGE: 'C' };
  if (env.LC_ALL) {
    env.LC_CTYPE = env.LC_ALL;
    delete env.LC_ALL;
  }
  // svn's built-in tunnel is `$SVN_SSH ssh -q --`: an SVN_SSH of the operator's wins.
  if (!env.SVN_SSH) env.SVN_SSH = svnTunnel(sshWords());
  return env;
}

/**
 * SVN_SSH with the shared connection. svn splits it into words itself
 * (apr_tokenize_to_argv: a word may be wrapped in quotes, backslash escapes),
 * not through a shell; a state dir it could not quote gets no sharing.
 */
function svnTunnel({ base, sharing }: SshWords): string {
  const quoted = sharing.map((w) =>
    /^[\w@%+=:,./-]+$/.test(w) ? w : /['\\]/.test(w) ? null : `'${w}'`,
  );
  return [...base, ...(quoted.every((w) => w !== null) ? quoted : []), '-q', '--'].join(' ');
}

interface RunSvn {
  timeoutMs: number;
  signal?: AbortSignal;
  onOutput?: (chunk: string) => void;
  onSpawn?: (pgid: number) => void;
  auth?: SvnTarget;
}

/**
 * The svn VCS plugin. svn is called directly (not through svn-spawn, which has
 * no timeout and puts passwords on the command line), always with
 * `--non-interactive`, and its `--xml` output is parsed with fast-xml-parser.
 */
export function createSvnPlugin(ctx: PluginContext, options: SvnPluginOptions = {}): VcsPlugin {
  const env = svnEnvironment(() => ctx.sshWords(), { ...process.env, ...options.env });
  const fallbackCommits = options.fallbackCommits ?? 10;
  /** Repository roots learned from `svn info`, by URL (without credentials). */
  const roots = new Map<string, string>();

  const svn = (args: string[], o: RunSvn): Promise<RunResult> => {
    const auth = o.auth ? authArgs(o.auth) : { args: [] };
    const argv = ['--non-interactive', ...auth.args, ...args];
    options.onRun?.(['svn', ...argv]);
    const onOutput = o.onOutput;
    return ctx.run('svn', argv, {
      env,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onSpawn: o.onSpawn,
      input: auth.input,
      onOutput: onOutput && ((chunk) => onOutput(ctx.redact(chunk))),
    });
  };
  const ok = (r: RunResult) => r.exitCode === 0 && !r.timedOut && !r.aborted;
  const why = (r: RunResult) => {
    const last =
      r.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('svn: E'))
        .pop() ?? r.stderr.trim().split('\n').pop()?.trim();
    return ctx.redact(last && !r.timedOut ? `${describeFailure(r)}: ${last}` : describeFailure(r));
  };
  const checkUrl = (url: string, code: 'EREMOTE' | 'ECHECKOUT') => {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url))
      throw new StagepostError(
        code,
        `svn: "${ctx.redact(url)}" is not a repository URL; fix the source's url in ci.yaml`,
      );
  };
  const checkRevision = (revision: string) => {
    if (!REVISION.test(revision))
      throw new StagepostError('ECHECKOUT', `svn: "${revision}" is not a revision number`);
  };

  return {
    kind: 'vcs',
    name: 'svn',
    shortRevision: (revision) => `r${revision}`,
    repositoryKey(source) {
      const { url } = splitCredentials(source.url);
      return roots.get(sameUrlKey(url)) ?? guessRoot(url);
    },

    async remoteRevisions(sources: SourceSpec[], query: QueryOptions): Promise<RemoteRevision[]> {
      if (sources.length === 0) return [];
      const targets = sources.map((s) => splitCredentials(s.url));
      for (const s of sources) checkUrl(s.url, 'EREMOTE');
      const urls = [...new Set(targets.map((t) => t.url))];
      const auth = targets.find((t) => t.password !== undefined);
      const r = await svn(['info', '--xml', '--', ...urls.map(target)], {
        timeoutMs: query.timeoutMs,
        signal: query.signal,
        auth,
      });
      const shown = ctx.redact(
        urls.length === 1 ? urls[0] : `${guessRoot(urls[0])} (${urls.length} URLs)`,
      );
      const fail = (why: string): never => {
        throw new StagepostError(
          'EREMOTE',
          `svn info ${shown} failed: ${why} — check the URL, the network and this host's access (credentials, ssh key); the next poll retries`,
          { details: { timedOut: r.timedOut } },
        );
      };

      const entries = parseInfo(r.stdout);
      const answered = new Map(entries.map((e) => [sameUrlKey(e.url), e]));
      const codes = [...r.stderr.matchAll(/\bsvn: (?:warning: )?([EW]\d{6}):/g)].map((m) => m[1]);
      const notFound = new Set<string>();
      for (const line of r.stderr.split('\n')) {
        const quoted = /'([^']+)'/.exec(line);
        if (NOT_FOUND.test(line) && quoted) notFound.add(sameUrlKey(quoted[1]));
      }
      if (
        r.timedOut ||
        r.aborted ||
        r.spawnError ||
        codes.some((c) => !ALLOWED_ERRORS.has(c)) ||
        (!ok(r) && entries.length === 0 && notFound.size === 0)
      )
        fail(why(r));

      const root = entries.find((e) => e.root)?.root;
      for (const e of entries) if (e.root) roots.set(sameUrlKey(e.url), e.root);
      return targets.map((t): RemoteRevision => {
        const key = sameUrlKey(t.url);
        const entry = answered.get(key);
        if (entry && REVISION.test(entry.lastChanged)) return { revision: entry.lastChanged };
        if (root && key.startsWith(sameUrlKey(root))) roots.set(key, root);
        if (notFound.has(key) || (!ok(r) && notFound.size > 0))
          return { missing: true, reason: `${ctx.redact(t.url)} does not exist in the repository` };
        return fail(`no answer for ${ctx.redact(t.url)}`);
      });
    },

    async checkout(source: SourceSpec, revision: string, o: CheckoutOptions): Promise<void> {
      checkRevision(revision);
      checkUrl(source.url, 'ECHECKOUT');
      const remote = splitCredentials(source.url);
      const deadline = Date.now() + o.timeoutMs;
      // The build log gets what a person would type and read: the command
      // line, then svn's own words. A query (`info --xml`) is not shown at all.
      const step = async (what: string, args: string[], shown = true) => {
        if (shown) o.onOutput?.(ctx.redact(`$ svn ${args.map(shellWord).join(' ')}\n`));
        const r = await svn(args, {
          timeoutMs: Math.max(1, deadline - Date.now()),
          signal: o.signal,
          onOutput: shown ? o.onOutput : undefined,
          onSpawn: o.onSpawn,
          auth: remote,
        });
        if (!ok(r))
          throw new StagepostError(
            'ECHECKOUT',
            `svn ${what} of ${ctx.redact(remote.url)} at r${revision} in ${o.dir} failed: ${why(r)}`,
            { details: { timedOut: r.timedOut } },
          );
        return r;
      };
      if (!existsSync(path.join(o.dir, '.svn'))) {
        mkdirSync(path.dirname(o.dir), { recursive: true });
        await step('checkout', [
          'checkout',
          '-r',
          revision,
          '--',
          target(remote.url),
          target(o.dir),
        ]);
        return;
      }
      const info = parseInfo(
        (await step('info', ['info', '--xml', '--', target(o.dir)], false)).stdout,
      )[0];
      // The repository's version wins over local edits: the site shows exactly `revision`.
      if (info && sameUrlKey(info.url) !== sameUrlKey(remote.url)) {
        await step('switch', [
          'switch',
          '--ignore-ancestry',
          '--accept',
          'theirs-full',
          '-r',
          revision,
          '--',
          target(remote.url),
          target(o.dir),
        ]);
      } else {
        await step('update', [
          'update',
          '--accept',
          'theirs-full',
          '-r',
          revision,
          '--',
          target(o.dir),
        ]);
      }
    },

    async commitsBetween(
      source: SourceSpec,
      from: string | null,
      to: string,
      o: CheckoutOptions & { limit: number },
    ): Promise<Commit[]> {
      checkRevision(to);
      if (from !== null) checkRevision(from);
      if (from === to) return [];
      const remote = splitCredentials(source.url);
      // An older `from` bounds the range; none (first build) or a newer one (a
      // switch to an older URL) gives the last few commits instead.
      const bounded = from !== null && Number(from) < Number(to);
      const range = bounded ? `${to}:${Number(from) + 1}` : `${to}:1`;
      const limit = bounded ? o.limit : Math.min(o.limit, fallbackCommits);
      // Peg the URL at `to`, so a branch deleted since still has a history.
      const r = await svn(
        ['log', '--xml', '-r', range, '--limit', String(limit), '--', `${remote.url}@${to}`],
        { timeoutMs: o.timeoutMs, signal: o.signal, auth: remote },
      );
      if (!ok(r))
        throw new StagepostError(
          'ECHECKOUT',
          `svn log ${ctx.redact(remote.url)} -r ${range} failed: ${why(r)}`,
        );
      return parseLog(r.stdout);
    },
  };
}

export default function svnPlugin(ctx: PluginContext): VcsPlugin {
  return createSvnPlugin(ctx);
}
