import { randomBytes } from 'node:crypto';
import {
  StagepostError,
  headlineEvent,
  notificationTitle,
  unknownOptionProblems,
  type Notification,
  type NotifierContext,
  type NotifierPlugin,
  type OptionProblem,
} from 'stagepost/plugin-api';
import { listOption, parseMailbox, recipients, type Mailbox } from './addresses.js';
import { committerFilter, committersProblems } from './committers.js';
import { bodySections, renderHtml, renderText } from './body.js';
import { createSender, parseTransport, type MailSender, type PreparedMail } from './transport.js';
import { EMAIL_OPTIONS } from './options.js';

/**
 * The email notifier (nodemailer). One mail per notification to `to` plus,
 * with `committers: true`, the authors of the commits in the build (the core
 * has filled in their addresses: git author mail, svn user via `authors` /
 * `authors_domain`), or with an allow-list (`committers: { domains: [...] }`)
 * only those of them it allows.
 */
const OPTIONS = EMAIL_OPTIONS.map((o) => o.key);

function validate(options: Record<string, unknown>, baseDir = process.cwd()): OptionProblem[] {
  const problems = unknownOptionProblems(options, OPTIONS);
  const transport = parseTransport(options.transport, baseDir);
  if (typeof transport === 'string') problems.push({ path: ['transport'], message: transport });
  if (!parseMailbox(options.from))
    problems.push({
      path: ['from'],
      message: 'give the sender address, e.g. "Staging <staging@example.com>"',
    });
  const to = listOption(options.to);
  to.forEach((t, i) => {
    if (!parseMailbox(t))
      problems.push({
        path: Array.isArray(options.to) ? ['to', i] : ['to'],
        message: `${JSON.stringify(t)} is not a mail address`,
      });
  });
  const committerIssues = committersProblems(options.committers);
  problems.push(...committerIssues);
  if (
    to.length === 0 &&
    (committerIssues.length > 0 || committerFilter(options.committers) === null)
  )
    problems.push({
      path: ['to'],
      message: 'give at least one address in `to` (or set committers: true)',
    });
  return problems;
}

const emailPlugin: NotifierPlugin = {
  kind: 'notifier',
  name: 'email',
  options: EMAIL_OPTIONS,
  validate: (options) => validate(options),
  create(options, ctx: NotifierContext) {
    const baseDir = ctx.configDir ?? process.cwd();
    const problems = validate(options, baseDir);
    if (problems.length > 0)
      throw new StagepostError(
        'EPLUGIN',
        `email: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`,
      );
    const from = parseMailbox(options.from)!;
    const to = listOption(options.to).map((t) => parseMailbox(t)!);
    const committers = committerFilter(options.committers);
    const spec = parseTransport(options.transport, baseDir) as Exclude<
      ReturnType<typeof parseTransport>,
      string
    >;
    let sender: MailSender | null = null;

    return {
      prepare(n: Notification): PreparedMail | null {
        const rcpt: Mailbox[] = recipients(
          to,
          committers && (n.type === 'build' || n.type === 'site')
            ? n.commits.map((c) => c.email).filter((e) => e !== undefined && committers(e.trim()))
            : [],
        );
        if (rcpt.length === 0) return null;
        const title = `[stagepost] ${notificationTitle(n)}`;
        const sections = bodySections(n);
        return {
          messageId: `<${Date.now().toString(36)}.${randomBytes(8).toString('hex')}@stagepost>`,
          date: new Date().toISOString(),
          from,
          to: rcpt,
          subject: title,
          text: renderText(sections),
          html: renderHtml(sections, title),
          headers: {
            'Auto-Submitted': 'auto-generated',
            'X-Stagepost-Event': headlineEvent(n.events) ?? '',
          },
        };
      },
      async deliver(message) {
        sender ??= createSender(spec);
        try {
          await sender.send(message as PreparedMail);
        } catch (err) {
          throw new StagepostError(
            'ENOTIFY',
            `email: sending failed: ${ctx.redact((err as Error).message)}`,
            { cause: err },
          );
        }
      },
      close() {
        sender?.close();
      },
    };
  },
};

export default emailPlugin;
