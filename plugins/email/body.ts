import {
  formatDuration,
  oneLine,
  type BuildNotification,
  type JobNotification,
  type Notification,
  type SlowNotification,
} from 'stagepost/plugin-api';

/**
 * The body of a notification mail, built once as sections and rendered twice:
 * plain text and HTML. Everything that came from a commit, a log or a config
 * error is bounded here and escaped by the HTML renderer.
 */
export interface Section {
  heading?: string;
  /** Plain paragraphs (one line each). */
  lines?: string[];
  /** Rows of cells, aligned in text, a table in HTML. */
  rows?: string[][];
  /** Verbatim lines (a log tail). */
  pre?: string[];
  link?: { label: string; url: string };
}

const MAX_COMMITS = 50;
const MAX_LOG_LINES = 100;
const MAX_LOG_LINE = 500;

const RESULT_WORDS: Record<string, string> = {
  success: 'SUCCESS',
  failure: 'FAILED',
  timeout: 'TIMED OUT',
  interrupted: 'INTERRUPTED',
  skipped: 'skipped',
};

export function bodySections(n: Notification): Section[] {
  if (n.type === 'config') {
    return [
      {
        lines: [
          `The edit of ${oneLine(n.file, 300)} was rejected; the daemon keeps running with the last good config.`,
        ],
      },
      { heading: 'Problems', pre: boundedLines(n.message.split('\n'), 200) },
    ];
  }
  if (n.type === 'slow') return slowSections(n);
  if (n.type === 'job') return [...jobSections(n), ...trendSections(n.trends)];
  if (n.type === 'site') {
    return [
      { lines: n.message.split('\n').map((l) => oneLine(l, 500)) },
      ...(n.urls.length
        ? [{ heading: 'It was at', lines: n.urls.map((u) => oneLine(u, 500)) }]
        : []),
      ...(n.commits.length
        ? [
            {
              heading: 'Last commits of its branch',
              rows: n.commits
                .slice(0, 10)
                .map((c) => [c.id.slice(0, 10), oneLine(c.author, 100), oneLine(c.subject, 200)]),
            },
          ]
        : []),
    ];
  }
  if (n.type === 'ref') {
    const back = n.events.includes('ref-back');
    return [
      {
        lines: [
          back
            ? `${oneLine(n.branch, 200)}: its sources are on the remote again; the next change builds as usual.`
            : `${oneLine(n.branch, 200)}: a source's ref is gone from its remote. The site stays as built; nothing builds until the ref is back or \`stagepost switch\` points the source elsewhere.`,
        ],
      },
      { pre: boundedLines(n.message.split('\n'), 50) },
    ];
  }
  return [...buildSections(n), ...trendSections(n.trends)];
}

/** The chart's numbers in text: this run, the median, the last runs. */
function slowSections(n: SlowNotification): Section[] {
  const what = n.job ? `Job ${n.job} on ${n.branch}, run #${n.id}` : `${n.branch}: build #${n.id}`;
  const factor = n.medianMs > 0 ? ` (${(n.durationMs / n.medianMs).toFixed(1)}x)` : '';
  return [
    {
      lines: [
        oneLine(
          `${what} ${n.running ? 'has run' : 'took'} ${formatDuration(n.durationMs)}${n.running ? ' so far' : ''}, more than ${SLOW_WORDS} its median of ${formatDuration(n.medianMs)}${factor}. Started ${n.startedAt}.`,
          500,
        ),
      ],
    },
    {
      heading: `The last ${n.recent.length} runs before it`,
      rows: n.recent.map((r) =>
        [
          `#${r.id}`,
          r.result ? (RESULT_WORDS[r.result] ?? r.result) : '-',
          formatDuration(r.durationMs),
        ].map((c) => oneLine(c, 100)),
      ),
    },
    ...logSections([], n.logUrl),
  ];
}

const SLOW_WORDS = 'three times';

function trendSections(trends: string[] | undefined): Section[] {
  if (!trends?.length) return [];
  return [
    { heading: 'Much faster than usual', lines: trends.slice(0, 20).map((t) => oneLine(t, 300)) },
  ];
}

function buildSections(n: BuildNotification): Section[] {
  const b = n.build;
  // A repair says so in the body as in the subject.
  const word = n.events.includes('fixed')
    ? 'FIXED'
    : b.result
      ? (RESULT_WORDS[b.result] ?? b.result)
      : 'STARTED';
  const where = b.failedStep ? ` at step ${b.failedStep}` : '';
  const sections: Section[] = [
    {
      lines: [
        oneLine(
          `${n.branch}: build #${b.id} ${word}${b.result && b.result !== 'success' ? where : ''}${b.durationMs !== undefined ? ` after ${formatDuration(b.durationMs)}` : ''}${b.forced ? ' (forced)' : ''}`,
          500,
        ),
      ],
    },
  ];
  if (n.customerUrls.length > 0)
    sections.push({ heading: 'Customer sites', lines: n.customerUrls.map((u) => oneLine(u, 500)) });
  if (n.revisions.length > 0) {
    sections.push({
      heading: 'Revisions',
      rows: n.revisions.map((r) =>
        [
          r.source,
          r.short,
          r.previous === null
            ? '(first build)'
            : r.previous === r.revision
              ? '(unchanged)'
              : `(was ${r.previousShort ?? r.previous})`,
        ].map((c) => oneLine(c, 100)),
      ),
    });
  }
  if (n.commits.length > 0) {
    // svn commits are revisions, written r1 as in the subject.
    const svn = new Set(n.revisions.filter((r) => r.vcs === 'svn').map((r) => r.source));
    const rows = n.commits
      .slice(0, MAX_COMMITS)
      .map((c) => [
        oneLine(svn.has(c.source) && /^\d+$/.test(c.id) ? `r${c.id}` : c.id, 12),
        oneLine(c.author || '?', 80),
        oneLine(c.subject, 200),
      ]);
    if (n.commits.length > MAX_COMMITS)
      rows.push(['…', '', `and ${n.commits.length - MAX_COMMITS} more`]);
    sections.push({ heading: 'Commits since the last build', rows });
  }
  if (b.steps.length > 0) {
    sections.push({
      heading: 'Steps',
      rows: b.steps.map((s) =>
        [
          s.name,
          RESULT_WORDS[s.result] ?? s.result,
          s.result === 'skipped' ? '' : formatDuration(s.durationMs),
          s.reason ?? '',
        ].map((c) => oneLine(c, 200)),
      ),
    });
  }
  return [...sections, ...logSections(b.result !== 'success' ? b.logTail : [], b.logUrl)];
}

function jobSections(n: JobNotification): Section[] {
  return [
    {
      lines: [
        oneLine(
          `Job ${n.job} on ${n.branch}: ${RESULT_WORDS[n.result] ?? n.result} after ${formatDuration(n.durationMs)} (started ${n.startedAt})`,
          500,
        ),
      ],
    },
    ...logSections(n.logTail, n.logUrl),
  ];
}

function logSections(logTail: string[], logUrl: string | undefined): Section[] {
  const out: Section[] = [];
  const tail = logTail.slice(-MAX_LOG_LINES);
  if (tail.length > 0)
    out.push({
      heading: `Last ${tail.length} lines of the log`,
      pre: boundedLines(tail, MAX_LOG_LINES),
    });
  if (logUrl) out.push({ link: { label: 'Full log', url: logUrl } });
  return out;
}

function boundedLines(lines: string[], max: number): string[] {
  return lines.slice(-max).map((l) => {
    // eslint-disable-next-line no-control-regex -- a log line in a mail body loses its control characters (a terminal escape would act in a mail reader)
    const clean = l.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
    return clean.length > MAX_LOG_LINE ? `${clean.slice(0, MAX_LOG_LINE)}…` : clean;
  });
}

export function renderText(sections: Section[]): string {
  const out: string[] = [];
  for (const s of sections) {
    if (s.heading) out.push(`${s.heading}:`);
    const indent = s.heading ? '  ' : '';
    for (const l of s.lines ?? []) out.push(indent + l);
    if (s.rows) {
      const widths = s.rows[0].map((_, i) => Math.max(...s.rows!.map((r) => (r[i] ?? '').length)));
      for (const r of s.rows)
        out.push(
          (
            indent + r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('  ')
          ).trimEnd(),
        );
    }
    for (const l of s.pre ?? []) out.push(`  | ${l}`);
    if (s.link) out.push(`${s.link.label}: ${s.link.url}`);
    out.push('');
  }
  return out.join('\n');
}

export function renderHtml(sections: Section[], title: string): string {
  const out: string[] = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family: sans-serif">`,
  ];
  for (const s of sections) {
    if (s.heading) out.push(`<h3>${escapeHtml(s.heading)}</h3>`);
    if (s.lines)
      out.push(
        s.heading
          ? `<ul>${s.lines.map((l) => `<li>${linkOrText(l)}</li>`).join('')}</ul>`
          : s.lines.map((l) => `<p>${escapeHtml(l)}</p>`).join(''),
      );
    if (s.rows)
      out.push(
        `<table cellpadding="3">${s.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</table>`,
      );
    if (s.pre)
      out.push(`<pre style="font-size: smaller">${s.pre.map(escapeHtml).join('\n')}</pre>`);
    if (s.link)
      out.push(
        `<p><a href="${escapeHtml(safeHref(s.link.url))}">${escapeHtml(s.link.label)}</a></p>`,
      );
  }
  out.push('</body></html>');
  return out.join('\n');
}

function linkOrText(text: string): string {
  return /^https?:\/\//i.test(text)
    ? `<a href="${escapeHtml(text)}">${escapeHtml(text)}</a>`
    : escapeHtml(text);
}

function safeHref(url: string): string {
  return /^https?:\/\//i.test(url) ? url : '#';
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
