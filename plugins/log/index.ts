import {
  headlineEvent,
  notificationTitle,
  unknownOptionProblems,
  type Notification,
  type NotifierContext,
  type NotifierPlugin,
  type OptionProblem,
} from 'stagepost/plugin-api';
import { LOG_OPTIONS } from './options.js';

/**
 * The log notifier: one line in the daemon's log per notification (journald
 * keeps it). Useful beside email, and as the smallest example of a notifier.
 */
const LEVELS = ['info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];
const BAD_NEWS = new Set([
  'failure',
  'still-failing',
  'job-failure',
  'config-error',
  'slow',
  'ref-missing',
]);

interface LogMessage {
  level: Level;
  title: string;
  meta: Record<string, unknown>;
}

const logPlugin: NotifierPlugin = {
  kind: 'notifier',
  name: 'log',
  options: LOG_OPTIONS,
  validate(options) {
    const problems: OptionProblem[] = unknownOptionProblems(
      options,
      LOG_OPTIONS.map((o) => o.key),
    );
    if (options.level !== undefined && !LEVELS.includes(options.level as Level))
      problems.push({ path: ['level'], message: `level must be one of ${LEVELS.join(', ')}` });
    return problems;
  },
  create(options, ctx: NotifierContext) {
    return {
      prepare(n: Notification): LogMessage {
        const event = headlineEvent(n.events);
        const level =
          (options.level as Level | undefined) ?? (event && BAD_NEWS.has(event) ? 'warn' : 'info');
        const meta: Record<string, unknown> = { events: n.events };
        if (n.type === 'build')
          Object.assign(meta, {
            branch: n.branch,
            build: n.build.id,
            result: n.build.result,
            logUrl: n.build.logUrl,
          });
        if (n.type === 'job')
          Object.assign(meta, { branch: n.branch, job: n.job, result: n.result, logUrl: n.logUrl });
        if (n.type === 'config') Object.assign(meta, { file: n.file, error: n.message });
        if (n.type === 'slow')
          Object.assign(meta, {
            branch: n.branch,
            job: n.job,
            run: n.id,
            durationMs: n.durationMs,
            medianMs: n.medianMs,
          });
        if (n.type === 'ref') Object.assign(meta, { branch: n.branch, error: n.message });
        if (n.type === 'site')
          Object.assign(meta, { branch: n.branch, pattern: n.pattern, message: n.message });
        return { level, title: notificationTitle(n), meta };
      },
      deliver(message) {
        const m = message as LogMessage;
        ctx.log[m.level]({ ...m.meta, title: m.title }, 'notification');
        return Promise.resolve();
      },
    };
  },
};

export default logPlugin;
