/**
 * From a path in the parsed config (`['branches', 'branch1', 'sources', 0,
 * 'ref']`) to the 1-based line of ci.yaml it came from, so every message can
 * point at the line to edit.
 */
import {
  isCollection,
  isMap,
  isNode,
  isScalar,
  type Document,
  type LineCounter,
  type Node,
} from 'yaml';
import type { ConfigPath } from './problems.js';

export class LineFinder {
  constructor(
    private readonly doc: Document,
    private readonly counter: LineCounter,
  ) {}

  /**
   * The line of the value at `path`; with `key`, of that key inside the map at
   * `path` (an unknown key). A path that does not exist (a missing key) gives
   * the line of its nearest existing parent.
   */
  lineOf(path: ConfigPath, key?: string): number {
    let node: Node | null = this.doc.contents;
    let line = this.line(node) ?? 1;
    for (const segment of key === undefined ? path : [...path, key]) {
      if (!isCollection(node)) break;
      const pair = isMap(node)
        ? node.items.find((p) => keyText(p.key) === String(segment))
        : undefined;
      if (pair) {
        // The key's line: for a block map that is where the entry starts.
        line = this.line(pair.key as Node) ?? line;
        node = isNode(pair.value) ? pair.value : null;
        continue;
      }
      const item = isMap(node) ? undefined : node.items[Number(segment)];
      if (!isNode(item)) break;
      node = item;
      line = this.line(node) ?? line;
    }
    return line;
  }

  private line(node: Node | null | undefined): number | undefined {
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : this.counter.linePos(offset).line;
  }
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}
