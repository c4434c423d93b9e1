import { XMLParser } from 'fast-xml-parser';
import type { Commit } from 'stagepost/plugin-api';

/** svn --xml output as data (tag values stay strings: a message "0123" is text). */
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  htmlEntities: true, // numeric character references (&#13;) in messages
  isArray: (name) => name === 'entry' || name === 'logentry',
});

export interface InfoEntry {
  url: string;
  root: string;
  /** The revision in which the target last changed. */
  lastChanged: string;
}

type Node = Record<string, unknown>;
const text = (v: unknown): string =>
  typeof v === 'string'
    ? v
    : v && typeof v === 'object' && '#text' in v
      ? String((v as Node)['#text'])
      : '';

/** Entries of `svn info --xml`; an output cut short by an error gives what is complete. */
export function parseInfo(xml: string): InfoEntry[] {
  if (!xml.includes('</info>')) return [];
  const doc = parser.parse(xml) as { info?: { entry?: Node[] } };
  return (doc.info?.entry ?? []).map((e) => ({
    url: text(e.url),
    root: text((e.repository as Node | undefined)?.root),
    lastChanged: text((e.commit as Node | undefined)?.revision),
  }));
}

export function parseLog(xml: string): Commit[] {
  const doc = parser.parse(xml) as { log?: { logentry?: Node[] } };
  return (doc.log?.logentry ?? []).map((e) => ({
    id: String(e.revision),
    author: text(e.author),
    date: text(e.date) || undefined,
    subject: text(e.msg).trimStart().split(/\r?\n/)[0].trimEnd(),
  }));
}
