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
  type Pair,
  type YAMLMap,
} from 'yaml';
import type { ConfigPath } from './problems.js';

export class LineFinder {
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();

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
      const pair = isMap(node) ? this.pairOf(node, String(segment)) : undefined;
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

  /**
   * The entry of `key` in a map, through an index made once per map: a search
   * of the items on every lookup made `check` quadratic in the number of
   * branches (the resolver asks for the line of each one).
   */
  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let index = this.index.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) {
        const text = keyText(pair.key);
        if (text !== undefined && !index.has(text)) index.set(text, pair);
      }
      this.index.set(map, index);
    }
    return index.get(key);
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
