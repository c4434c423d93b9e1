/**
 * Changing one scalar of ci.yaml by editing its source text at the node's
 * range, so the file's diff is that value alone: re-stringifying the document
 * would move end-of-line comments, reformat flow collections and fold long
 * lines of everything else.
 */
import { isDeepStrictEqual } from 'node:util';
import { isScalar, parseDocument, Scalar } from 'yaml';
import { StagepostError } from '../errors.js';

type Key = string | number;

/** `text` with the scalar at `path` replaced by `value`, in the style it had where it can be. */
export function replaceScalar(text: string, path: Key[], value: string): string {
  const doc = parseDocument(text, { keepSourceTokens: true });
  const node = doc.getIn(path, true);
  const where = path.join('.');
  if (!isScalar(node) || !node.range)
    throw new StagepostError(
      'ECONFIG',
      `${where} is not a plain value in the file (an alias or a collection) — edit it by hand`,
    );
  const [start, end] = node.range;
  const expected = doc.toJS() as unknown;
  setIn(expected, path, value);
  for (const candidate of candidates(node, value)) {
    const next = text.slice(0, start) + candidate + text.slice(end);
    // The same document with only that value changed: a plain word that YAML
    // would read otherwise (a number, `a, b` in a flow list) fails this.
    const reread = parseDocument(next);
    if (reread.errors.length === 0 && isDeepStrictEqual(reread.toJS(), expected)) return next;
  }
  throw new StagepostError('ECONFIG', `cannot write ${JSON.stringify(value)} at ${where}`);
}

/** Spellings to try, the node's own style first. */
function candidates(node: Scalar, value: string): string[] {
  const single = `'${value.replaceAll("'", "''")}'`;
  const double = JSON.stringify(value);
  switch (node.type) {
    case Scalar.QUOTE_SINGLE:
      return [single, double];
    case Scalar.QUOTE_DOUBLE:
      return [double];
    case Scalar.PLAIN:
      return /^[^\n\r\t#'"]*$/.test(value) ? [value, double] : [double];
    default:
      // A block scalar's range ends after its line break, which the value keeps.
      return [`${double}\n`];
  }
}

function setIn(target: unknown, path: Key[], value: string): void {
  let cursor = target as Record<Key, unknown>;
  for (const key of path.slice(0, -1)) cursor = cursor[key] as Record<Key, unknown>;
  cursor[path[path.length - 1]] = value;
}
