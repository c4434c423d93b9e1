/**
 * Loading ci.yaml: YAML with positions → `${NAME}` substitution → schema →
 * cross-field rules → the resolved Config. Every problem is collected and
 * thrown once (ECONFIG), each with its file and line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, visit, type Document } from 'yaml';
import { z } from 'zod';
import { StagepostError, errorMessage } from '../errors.js';
import { redactor } from '../util/redact.js';
import { substituteEnv } from './env.js';
import { LineFinder } from './lines.js';
import { duplicateKeys } from './unique-keys.js';
import {
  configError,
  formatPath,
  issueProblems,
  type PathProblem,
  type Problem,
} from './problems.js';
import { resolveConfig } from './resolve.js';
import { checkRules } from './rules.js';
import {
  BranchConfigSchema,
  ConfigSchema,
  JobConfigSchema,
  SiteConfigSchema,
  HealthSettingsSchema,
  SourceConfigSchema,
} from './schema.js';
import type { Config } from './types.js';
import { withSites } from '../patterns/expand.js';
import { readSites } from '../patterns/sites-file.js';

// The schema problems are reported already; these let the rules still check
// the rest of a branch with an unknown key or one bad source, or a job with a bad schedule.
const LenientBranch = BranchConfigSchema.strip().extend({ sources: z.array(z.unknown()) });
const JobBranches = JobConfigSchema.pick({ branches: true }).strip();

/** SPEC: `--config PATH`, else `$STAGEPOST_CONFIG`, else `./ci.yaml`; absolute. */
export function resolveConfigPath(
  flag?: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): string {
  return path.resolve(cwd, flag || env.STAGEPOST_CONFIG || 'ci.yaml');
}

export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new StagepostError(
        'ECONFIGMISSING',
        `no config at ${absolute} — write one (see config/minimal.yaml), or point to it with --config PATH or $STAGEPOST_CONFIG`,
        { cause: err },
      );
    }
    throw new StagepostError(
      'ECONFIGMISSING',
      `cannot read ${absolute} (${code ?? String(err)}) — check its permissions, or pass another with --config PATH`,
      { cause: err },
    );
  }
  return parseConfig(text, absolute, env);
}

const isMapLike = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

/** Parse the text of ci.yaml that lives (or will live) at `file`. Throws ECONFIG with every problem. */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const absolute = path.resolve(file);
  const dir = path.dirname(absolute);
  const counter = new LineCounter();
  // uniqueKeys: duplicateKeys() does that check in linear time.
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    throw configError(
      doc.errors.map((e) => ({
        file: absolute,
        line: counter.linePos(e.pos[0]).line,
        path: '',
        message: `not valid YAML: ${e.message.split('\n')[0]} — fix the indentation or quoting here`,
      })),
    );
  }
  const duplicates = duplicateKeys(doc);
  if (duplicates.length > 0) {
    throw configError(
      duplicates.map((d) => ({
        file: absolute,
        line: counter.linePos(d.offset).line,
        path: '',
        message: `not valid YAML: Map keys must be unique — ${d.key} is already on line ${counter.linePos(d.firstOffset).line}; remove or rename one`,
      })),
    );
  }
  const lines = new LineFinder(doc, counter);
  const located = (p: PathProblem): Problem => ({
    file: absolute,
    line: lines.lineOf(p.path, p.key),
    path: formatPath(p.key === undefined ? p.path : [...p.path, p.key]),
    message: p.message,
  });

  const data = toData(doc, absolute, counter);
  if (!isMapLike(data)) {
    throw configError([
      {
        file: absolute,
        line: 1,
        path: '',
        message:
          'ci.yaml must be a map of keys, starting with "version: 1" — see config/minimal.yaml',
      },
    ]);
  }

  const substituted = substituteEnv(data, env);
  const value = substituted.value as Record<string, unknown>;
  const problems: PathProblem[] = [...substituted.problems];
  const parsed = ConfigSchema.safeParse(value);
  if (!parsed.success) problems.push(...issueProblems(ConfigSchema, parsed.error.issues, value));

  problems.push(
    ...checkRules({
      dir,
      stateDir: typeof value.state_dir === 'string' ? value.state_dir : undefined,
      smtpRelay: part(SiteConfigSchema, value.site)?.smtp_relay,
      health: part(HealthSettingsSchema, value.health),
      branches: validEntries(LenientBranch, value.branches).map(([name, b]) => [
        name,
        { ...b, sources: b.sources.map((s) => part(SourceConfigSchema, s)) },
      ]),
      branchNames: isMapLike(value.branches) ? Object.keys(value.branches) : [],
      jobs: validEntries(JobBranches, value.jobs),
      cluster: value.cluster !== undefined,
    }),
  );

  // Registered even when the file is rejected: its messages may quote a substituted value.
  for (const secret of substituted.secrets) redactor.add(secret);
  if (problems.length > 0 || !parsed.success) throw configError(problems.map(located));
  const config = resolveConfig(parsed.data, {
    file: absolute,
    dir,
    lines,
    env,
    secretNames: substituted.names,
  });
  // The patterns' sites are branches like any other from here on (status, proxy-config, the daemon).
  return config.patterns.length === 0 ? config : withSites(config, readSites(config.stateDir));
}

/**
 * The plain data of the document. An alias that expands into too many nodes
 * (the "billion laughs") is a config error with the reason, not a crash.
 */
function toData(doc: Document, file: string, counter: LineCounter): unknown {
  try {
    return doc.toJS({ maxAliasCount: 1000 }) as unknown;
  } catch (err) {
    let offset = 0;
    visit(doc, {
      Alias(_key, node) {
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    throw configError([
      {
        file,
        line: counter.linePos(offset).line,
        path: '',
        message: `not valid YAML: its aliases expand too far (${errorMessage(err)}) — write the values out instead of nesting aliases`,
      },
    ]);
  }
}

interface Parser<T> {
  safeParse(v: unknown): { success: true; data: T } | { success: false };
}

function part<T>(schema: Parser<T>, v: unknown): T | undefined {
  const r = schema.safeParse(v);
  return r.success ? r.data : undefined;
}

function validEntries<T>(schema: Parser<T>, v: unknown): Array<[string, T]> {
  if (!isMapLike(v)) return [];
  return Object.entries(v).flatMap(([k, item]) => {
    const data = part(schema, item);
    return data === undefined ? [] : [[k, data] as [string, T]];
  });
}
