/**
 * Config problems: collected from every check, then thrown once as one
 * ECONFIG error whose message has a line per problem —
 * `ci.yaml:14: branches.branch1.sources[0].ref: git sources need a ref … — add "ref: main"`.
 */
import path from 'node:path';
import { z } from 'zod';
import { StagepostError } from '../errors.js';

export type ConfigPath = Array<string | number>;

export interface Problem {
  file: string;
  line: number;
  /** Dotted form, `branches.branch1.sources[0].ref`; empty for the whole file. */
  path: string;
  message: string;
}

/** A problem before its line is known. */
export interface PathProblem {
  path: ConfigPath;
  /** An unknown key inside the map at `path`. */
  key?: string;
  message: string;
}

export function formatPath(p: ConfigPath): string {
  let out = '';
  for (const segment of p) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** The file as a user would type it: relative to the working directory when inside it. */
export function displayFile(file: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export function problemLine(p: Problem): string {
  return `${displayFile(p.file)}:${p.line}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

export function configError(problems: Problem[]): StagepostError {
  const sorted = [...problems].sort((a, b) => a.line - b.line);
  const summary =
    sorted.length === 1 ? '' : `${sorted.length} problems in ${displayFile(sorted[0].file)}:\n`;
  return new StagepostError('ECONFIG', summary + sorted.map(problemLine).join('\n'), {
    details: { problems: sorted },
  });
}

/** The problems of an ECONFIG error (empty for any other error). */
export function configProblems(err: unknown): Problem[] {
  if (!(err instanceof StagepostError) || err.code !== 'ECONFIG') return [];
  const problems = err.details?.problems;
  return Array.isArray(problems) ? (problems as Problem[]) : [];
}

// ------------------------------------------------------------ zod issues

/** The schema that validates the value at `at` (through optional, nullable, unions of objects). */
function schemaAt(root: z.ZodType, at: ConfigPath): z.ZodType | undefined {
  let schema: z.ZodType | undefined = root;
  for (const segment of [...at, null]) {
    for (;;) {
      if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
        schema = schema.unwrap() as z.ZodType;
      else if (schema instanceof z.ZodUnion)
        schema = (schema.options as z.ZodType[]).find(
          (o) => o instanceof z.ZodObject || o instanceof z.ZodArray,
        );
      else break;
    }
    if (segment === null || !schema) return schema;
    if (schema instanceof z.ZodObject)
      schema = (schema.shape as Record<string, z.ZodType>)[String(segment)];
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
    else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
    else return undefined;
  }
  return schema;
}

function knownKeys(root: z.ZodType, at: ConfigPath): string[] {
  const schema = schemaAt(root, at);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function example(root: z.ZodType, at: ConfigPath): unknown {
  let schema = schemaAt(root, at);
  for (;;) {
    const examples = schema?.meta()?.examples;
    if (Array.isArray(examples) && examples.length > 0) return examples[0];
    if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
      schema = schema.unwrap() as z.ZodType;
    else return undefined;
  }
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(up + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

export function unknownKeyMessage(key: string, known: string[]): string {
  const close = known
    .filter((k) => distance(k, key) <= Math.max(1, Math.floor(k.length / 3)))
    .sort((a, b) => distance(a, key) - distance(b, key));
  const hint =
    close.length > 0
      ? `did you mean "${close[0]}"?`
      : known.length > 0
        ? `the keys here are: ${known.join(', ')}`
        : 'remove it';
  return `unknown key "${key}" — ${hint}`;
}

function getAt(data: unknown, at: ConfigPath): unknown {
  let v = data;
  for (const segment of at)
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[String(segment)] : undefined;
  return v;
}

/** Turn zod's issues into problems that say what to do. */
export function issueProblems(
  root: z.ZodType,
  issues: z.core.$ZodIssue[],
  data: unknown,
): PathProblem[] {
  const out: PathProblem[] = [];
  for (const issue of issues) {
    const at = issue.path as ConfigPath;
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(root, at);
      for (const key of issue.keys)
        out.push({ path: at, key, message: unknownKeyMessage(key, known) });
    } else if (issue.code === 'invalid_key') {
      out.push({ path: at, message: issue.issues[0]?.message ?? issue.message });
    } else if (getAt(data, at) === undefined && issue.code === 'invalid_type') {
      const ex = example(root, at);
      const key = String(at[at.length - 1]);
      const write =
        ex === undefined
          ? ''
          : ` — add "${key}: ${typeof ex === 'string' ? ex : JSON.stringify(ex)}"`;
      out.push({ path: at, message: `${key} is required${write}` });
    } else {
      out.push({ path: at, message: issue.message.replace(/^Invalid input: /, '') });
    }
  }
  return out;
}
