import {
  StagepostError,
  headlineEvent,
  notificationTitle,
  parseDuration,
  unknownOptionProblems,
  type Notification,
  type NotifierContext,
  type NotifierPlugin,
  type OptionProblem,
} from 'stagepost/plugin-api';
import { WEBHOOK_OPTIONS } from './options.js';

/**
 * The webhook notifier: POSTs the notification as JSON (plus a one-line
 * `text` for chat systems) to `url`. A non-2xx answer or a timeout throws, so
 * the outbox retries. The URL often carries a token, so it stays out of the
 * prepared message (the outbox file) and out of error messages.
 */
const DEFAULT_TIMEOUT_MS = 10_000;

function validate(options: Record<string, unknown>): OptionProblem[] {
  const problems = unknownOptionProblems(
    options,
    WEBHOOK_OPTIONS.map((o) => o.key),
  );
  if (typeof options.url !== 'string' || !/^https?:\/\/[^\s]+$/i.test(options.url))
    problems.push({ path: ['url'], message: 'give the http(s) URL to POST to' });
  if (options.timeout !== undefined && parseDuration(options.timeout) === undefined)
    problems.push({ path: ['timeout'], message: 'give a duration like 10s' });
  const headers = options.headers;
  if (
    headers !== undefined &&
    (typeof headers !== 'object' ||
      headers === null ||
      Object.values(headers).some((v) => typeof v !== 'string'))
  ) {
    problems.push({ path: ['headers'], message: 'give a map of header names to strings' });
  }
  return problems;
}

const webhookPlugin: NotifierPlugin = {
  kind: 'notifier',
  name: 'webhook',
  options: WEBHOOK_OPTIONS,
  validate,
  create(options, ctx: NotifierContext) {
    const problems = validate(options);
    if (problems.length > 0)
      throw new StagepostError(
        'EPLUGIN',
        `webhook: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`,
      );
    const url = options.url as string;
    const timeoutMs = parseDuration(options.timeout) ?? DEFAULT_TIMEOUT_MS;
    const headers = (options.headers as Record<string, string> | undefined) ?? {};
    return {
      prepare(n: Notification) {
        return {
          ...n,
          event: headlineEvent(n.events),
          text: `[stagepost] ${notificationTitle(n)}`,
        };
      },
      async deliver(message) {
        let response: Response;
        try {
          response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'stagepost', ...headers },
            body: JSON.stringify(message),
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (err) {
          const cause =
            (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
          throw new StagepostError(
            'ENOTIFY',
            `webhook POST to ${ctx.redact(new URL(url).origin)} failed: ${ctx.redact(String(cause))}`,
          );
        }
        // Drain the body so the connection is released.
        const body = (await response.text().catch(() => '')).slice(0, 200);
        if (!response.ok)
          throw new StagepostError(
            'ENOTIFY',
            `webhook POST to ${ctx.redact(new URL(url).origin)} answered ${response.status}: ${ctx.redact(body)}`,
          );
      },
    };
  },
};

export default webhookPlugin;
