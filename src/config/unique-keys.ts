/**
 * Duplicate keys of ci.yaml, found in one pass. The yaml library's own check
 * compares every key with every earlier key of its map, which made `check`
 * of a file with 200,000 branches take minutes; it is switched off in the
 * parser and done here with a Set per map.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';

export interface DuplicateKey {
  key: string;
  /** Offsets in the text of the repeated key and of its first occurrence. */
  offset: number;
  firstOffset: number;
}

export function duplicateKeys(doc: Document): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        stack.push(pair.value);
        const key = pair.key as Node | null;
        if (!isScalar(key) || key.value === '<<') continue;
        const text = `${typeof key.value}:${String(key.value)}`;
        const offset = key.range?.[0] ?? 0;
        const first = seen.get(text);
        if (first === undefined) seen.set(text, offset);
        else found.push({ key: String(key.value), offset, firstOffset: first });
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(isPair(item) ? item.value : item);
    }
  }
  return found.sort((a, b) => a.offset - b.offset);
}
