/**
 * From ci.yaml as written (already validated) to the Config of types.ts:
 * defaults applied, per-branch overrides merged, durations in ms, paths
 * absolute.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseDuration } from '../util/duration.js';
import { parseSize } from '../util/size.js';
import {
  DEFAULTS,
  type RawConfig,
  type RawHealth,
  type RawJob,
  type RawNotifier,
  type RawStep,
} from './schema.js';
import type {
  BranchConfig,
  ClusterConfig,
  Config,
  HealthSettings,
  HttpConfig,
  JobConfig,
  NotifierConfig,
  PatternConfig,
  PollSettings,
  StepConfig,
} from './types.js';
import type { LineFinder } from './lines.js';
import type { ConfigPath } from './problems.js';

const ms = (value: string | number | undefined, fallback: string): number =>
  parseDuration(value ?? fallback)!;

interface Context {
  file: string;
  dir: string;
  lines: LineFinder;
  /** The environment `env.pass` reads (the loader's). */
  env?: NodeJS.ProcessEnv;
  /** Names of the variables `${VAR}` read. */
  secretNames?: string[];
}

export function resolveConfig(raw: RawConfig, ctx: Context): Config {
  const { dir } = ctx;
  const poll = resolvePoll(raw.poll, undefined);
  const stepTimeoutMs = ms(raw.builds?.step_timeout, DEFAULTS.builds.step_timeout);
  const keep = raw.builds?.keep ?? DEFAULTS.builds.keep;
  const notify = (raw.notify ?? []).map((n, i) => resolveNotifier(n, ['notify', i], ctx));
  const branchEntries = Object.entries(raw.branches ?? {});

  const resolveBranch = ([name, b]: (typeof branchEntries)[number]): BranchConfig => {
    const branchStepTimeout =
      b.builds?.step_timeout === undefined
        ? stepTimeoutMs
        : ms(b.builds.step_timeout, DEFAULTS.builds.step_timeout);
    const health = b.health === false ? undefined : resolveHealth(raw.health, b.health);
    return {
      name,
      ...(b.host ? { host: typeof b.host === 'string' ? b.host : b.host[0] } : {}),
      dir: path.resolve(dir, b.dir),
      ...(typeof b.port === 'number' ? { port: b.port } : {}),
      sources: b.sources.map((s, i) => {
        const { name: sourceName, vcs, url, ref, path: sourcePath, ...options } = s;
        return {
          name: sourceName,
          vcs: resolvePluginName(vcs, dir),
          url,
          ...(ref === undefined ? {} : { ref }),
          path: sourcePath ?? `src/${sourceName}`,
          options,
          line: ctx.lines.lineOf(['branches', name, 'sources', i]),
          ...(b.match?.source === sourceName ? { match: b.match.refs } : {}),
        };
      }),
      customers: b.customers ?? [],
      mailin: b.mailin ?? [],
      smtpPort: b.smtp_port,
      mailout: b.mailout ?? false,
      poll: resolvePoll(b.poll, poll),
      stepTimeoutMs: branchStepTimeout,
      keep: b.builds?.keep ?? keep,
      env: resolveStepEnv([raw.env, b.env], ctx.env ?? {}),
      steps: resolveSteps(b.steps ?? raw.steps, branchStepTimeout),
      create: resolveSteps(b.create ?? raw.create, branchStepTimeout),
      teardown: resolveSteps(b.teardown ?? raw.teardown, branchStepTimeout),
      ...(health ? { health } : {}),
      notify: [
        ...notify,
        ...(b.notify ?? []).map((n, i) => resolveNotifier(n, ['branches', name, 'notify', i], ctx)),
      ],
      line: ctx.lines.lineOf(['branches', name]),
    };
  };
  const branches = branchEntries.filter(([, b]) => !b.match).map(resolveBranch);
  const patterns = branchEntries.flatMap(([name, b]): PatternConfig[] => {
    if (!b.match) return [];
    const range = typeof b.port === 'string' ? b.port.split('-').map(Number) : undefined;
    return [
      {
        name,
        match: {
          source: b.match.source,
          refs: b.match.refs,
          retireAfter: b.match.retire_after ?? DEFAULTS.retireAfter,
        },
        ...(range ? { ports: { first: range[0], last: range[1] } } : {}),
        ...(b.slots === undefined ? {} : { slots: b.slots }),
        keepDir: b.keep_dir ?? false,
        ...(b.host ? { hosts: typeof b.host === 'string' ? [b.host] : b.host } : {}),
        ...(b.idle === undefined ? {} : { idleMs: ms(b.idle, '0') }),
        template: resolveBranch([name, b]),
        line: ctx.lines.lineOf(['branches', name]),
      },
    ];
  });

  const allBranches = branches.map((b) => b.name);
  const jobs = Object.entries(raw.jobs ?? {}).map(([name, j]) =>
    resolveJob(name, j, allBranches, ctx),
  );
  const health = resolveHealth(raw.health, undefined);
  const cluster = raw.cluster ? resolveCluster(raw.cluster, ctx.env ?? {}) : undefined;
  // Several hosts may share one ci.yaml (and one disk): `{host}` keeps their state apart.
  const stateDir = (raw.state_dir ?? DEFAULTS.stateDir).replaceAll(
    '{host}',
    cluster?.host ?? 'local',
  );

  return {
    file: ctx.file,
    dir,
    version: 1,
    stateDir: path.resolve(dir, stateDir),
    ...(cluster ? { cluster } : {}),
    site: {
      ...(raw.site?.base_url ? { baseUrl: raw.site.base_url.replace(/\/+$/, '') } : {}),
      ...(raw.site?.certificate ? { certificate: path.resolve(dir, raw.site.certificate) } : {}),
      ...(raw.site?.certificate_key
        ? { certificateKey: path.resolve(dir, raw.site.certificate_key) }
        : {}),
      ...(raw.site?.smtp_relay ? { smtpRelay: raw.site.smtp_relay } : {}),
      ...(raw.site?.mail_domain ? { mailDomain: raw.site.mail_domain } : {}),
    },
    poll,
    concurrency: raw.builds?.concurrency ?? DEFAULTS.builds.concurrency,
    shutdownGraceMs: ms(raw.builds?.shutdown_grace, DEFAULTS.builds.shutdown_grace),
    checkoutTimeoutMs: ms(raw.builds?.checkout_timeout, DEFAULTS.builds.checkout_timeout),
    checkoutStallMs: ms(raw.builds?.checkout_stall, DEFAULTS.builds.checkout_stall),
    logMaxBytes: parseSize(raw.builds?.log_max ?? DEFAULTS.builds.log_max)!,
    steps: resolveSteps(raw.steps, stepTimeoutMs),
    create: resolveSteps(raw.create, stepTimeoutMs),
    teardown: resolveSteps(raw.teardown, stepTimeoutMs),
    ...(health ? { health } : {}),
    notify,
    authors: raw.authors ?? {},
    ...(raw.authors_domain ? { authorsDomain: raw.authors_domain } : {}),
    ...(raw.http ? { http: resolveHttp(raw.http) } : {}),
    ...(raw.on_sites_changed ? { onSitesChanged: raw.on_sites_changed } : {}),
    branches,
    patterns,
    jobs,
    secretNames: ctx.secretNames ?? [],
  };
}

/** The host name: as written, else `$STAGEPOST_HOST`, else the machine's name made a valid host name. */
function resolveCluster(
  raw: NonNullable<RawConfig['cluster']>,
  env: NodeJS.ProcessEnv,
): ClusterConfig {
  const fallback =
    os
      .hostname()
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '') || 'host';
  return {
    database: raw.database,
    host: raw.host ?? (env.STAGEPOST_HOST || fallback),
    heartbeatMs: ms(raw.heartbeat, '5s'),
  };
}

/** `env.pass` looked up now (a reload looks again), then `env.set`; the branch's after the top level's. */
function resolveStepEnv(
  layers: Array<RawConfig['env']>,
  from: NodeJS.ProcessEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const layer of layers) {
    for (const name of layer?.pass ?? []) {
      const value = from[name];
      if (value !== undefined) env[name] = value;
    }
    Object.assign(env, layer?.set ?? {});
  }
  return env;
}

function resolvePoll(raw: RawConfig['poll'], base: PollSettings | undefined): PollSettings {
  const pick = (value: string | number | undefined, inherited: number | undefined, dflt: string) =>
    value !== undefined ? ms(value, dflt) : (inherited ?? ms(undefined, dflt));
  return {
    intervalMs: pick(raw?.interval, base?.intervalMs, DEFAULTS.poll.interval),
    timeoutMs: pick(raw?.timeout, base?.timeoutMs, DEFAULTS.poll.timeout),
    quietMs: pick(raw?.quiet, base?.quietMs, DEFAULTS.poll.quiet),
  };
}

function resolveSteps(steps: RawStep[] | undefined, defaultTimeoutMs: number): StepConfig[] {
  return (steps ?? []).map((s) => ({
    name: s.name,
    run: s.run,
    timeoutMs: s.timeout === undefined ? defaultTimeoutMs : ms(s.timeout, '0'),
  }));
}

/** Branch keys override global keys; no url anywhere means no health checks (rules.ts reports it). */
function resolveHealth(
  global: RawHealth | undefined,
  branch: RawHealth | undefined,
): HealthSettings | undefined {
  const url = branch?.url ?? global?.url;
  if (!url) return undefined;
  return {
    url,
    expect: parseExpect(branch?.expect ?? global?.expect ?? DEFAULTS.health.expect),
    timeoutMs: ms(branch?.timeout ?? global?.timeout, DEFAULTS.health.timeout),
  };
}

export function parseExpect(
  expect: string | number | Array<string | number>,
): HealthSettings['expect'] {
  return (Array.isArray(expect) ? expect : [expect]).map((e) => {
    const [min, max = min] = String(e)
      .split('-')
      .map((part) => Number(part.trim())) as [number, number?];
    return { min, max };
  });
}

/** A plugin written as a relative path is relative to ci.yaml, not to wherever the daemon was started. */
function resolvePluginName(use: string, dir: string): string {
  return use.startsWith('./') || use.startsWith('../') ? path.resolve(dir, use) : use;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function notifierKey(use: string, options: Record<string, unknown>): string {
  return createHash('sha256')
    .update(`${use}\n${canonicalJson(options)}`)
    .digest('hex')
    .slice(0, 12);
}

function resolveNotifier(raw: RawNotifier, at: ConfigPath, ctx: Context): NotifierConfig {
  const { use, on, ...options } = raw;
  const resolved = resolvePluginName(use, ctx.dir);
  return {
    use: resolved,
    on: on ?? [...DEFAULTS.notifyOn],
    options,
    file: ctx.file,
    line: ctx.lines.lineOf(at),
    key: notifierKey(resolved, options),
  };
}

function resolveJob(name: string, j: RawJob, allBranches: string[], ctx: Context): JobConfig {
  return {
    name,
    schedule: j.schedule,
    ...(j.timezone ? { timezone: j.timezone } : {}),
    branches: j.branches === 'all' ? allBranches : j.branches,
    run: j.run,
    timeoutMs: ms(j.timeout, DEFAULTS.job.timeout),
    notifyOn: j.notify_on ?? [...DEFAULTS.job.notifyOn],
    line: ctx.lines.lineOf(['jobs', name]),
  };
}

function resolveHttp(raw: NonNullable<RawConfig['http']>): HttpConfig {
  const listen = String(raw.listen ?? DEFAULTS.httpListen);
  const m = /^(?:\[?(.*?)\]?:)?(\d+)$/.exec(listen)!;
  const host = m[1] || '127.0.0.1';
  const port = Number(m[2]);
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    ...(raw.token ? { token: raw.token } : {}),
    publicUrl: (raw.public_url ?? `http://${hostInUrl}:${port}`).replace(/\/+$/, ''),
    publicLogs: raw.public_logs ?? true,
    publicUrlSet: raw.public_url !== undefined,
  };
}
