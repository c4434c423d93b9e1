import path from 'node:path';
import type { EventName, Notification } from '../plugin-api.js';

/** The words of a subject, the most telling event first (a repair says FIXED, not SUCCESS). */
const LABELS: Array<[EventName, string]> = [
  ['fixed', 'FIXED'],
  ['still-failing', 'STILL FAILING'],
  ['failure', 'FAILED'],
  ['success', 'SUCCESS'],
  ['started', 'STARTED'],
  ['job-failure', 'JOB FAILED'],
  ['config-error', 'CONFIG ERROR'],
  ['slow', 'SLOW'],
  ['ref-missing', 'REF MISSING'],
  ['ref-back', 'REF BACK'],
  ['retired', 'RETIRED'],
  ['retire-held', 'RETIRING HELD'],
];

export function headlineEvent(events: readonly EventName[]): EventName | undefined {
  return LABELS.find(([e]) => events.includes(e))?.[0];
}

/**
 * One line naming what happened: `branch1 FAILED (buildout) karl@3f2a9c1
 * osfkarl@r4812`, `staging JOB FAILED nightly-sync`, `CONFIG ERROR ci.yaml`.
 * Mail subjects, chat messages and log lines all use it.
 */
export function notificationTitle(n: Notification): string {
  const event = headlineEvent(n.events);
  const label = LABELS.find(([e]) => e === event)?.[1];
  let title: string;
  if (n.type === 'config') {
    title = `CONFIG ERROR ${path.basename(n.file)}`;
  } else if (n.type === 'slow') {
    title = `${n.branch} SLOW ${n.job ? `job ${n.job}` : 'build'} #${n.id}`;
  } else if (n.type === 'site') {
    title = `${n.branch} ${label ?? 'RETIRED'}`;
  } else if (n.type === 'ref') {
    title = `${n.branch} ${label ?? 'REF'} ${n.sources.join(' ')}`;
  } else if (n.type === 'job') {
    title = `${n.branch} ${n.result === 'success' ? 'JOB SUCCESS' : 'JOB FAILED'} ${n.job}`;
  } else {
    const failing = event === 'failure' || event === 'still-failing';
    const step = failing && n.build.failedStep ? ` (${n.build.failedStep})` : '';
    const revisions = n.revisions.map((r) => ` ${r.source}@${r.short}`).join('');
    title = `${n.branch} ${label ?? (n.build.result ?? 'BUILD').toUpperCase()}${step}${revisions}`;
  }
  return oneLine(title, 300);
}

/** Text from a commit or a log made safe for one line: no control characters, bounded. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- a subject line is flattened: control characters are what it removes
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
