/**
 * The `slow` event: a run over 3x its median and a minute longer is mailed
 * to the operators once, with the numbers in text; nothing below that. An
 * injected clock stands in for the minutes; the mail goes through the real
 * dispatcher and email notifier to a real SMTP server.
 */
import path from 'node:path';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { memoryLogger } from '../../src/log.js';
import { SlowWatch } from '../../src/builds/slow-watch.js';
import { isSlow, median, trendOf } from '../../src/builds/trends.js';
import type { BuildRecord } from '../../src/state/store.js';
import { tempDir } from '../helpers/tmp.js';
import {
  buildDraft,
  notifierConfig,
  parseMail,
  startSmtp,
  type TestSmtp,
} from '../notify/helpers.js';

const MIN = 60_000;
const T0 = Date.parse('2026-06-01T02:00:00.000Z');

const run = (id: number, minutes: number, result: BuildRecord['result'] = 'success') => ({
  id,
  kind: 'job:sync',
  result,
  startedAt: new Date(T0 - id * 86_400_000).toISOString(),
  durationMs: minutes * MIN,
  forced: false,
  steps: [],
  revisions: {},
});

let tmp: ReturnType<typeof tempDir>;
let smtp: TestSmtp;
let dispatcher: NotifyDispatcher;
beforeEach(async () => {
  tmp = tempDir();
  smtp = await startSmtp();
  dispatcher = new NotifyDispatcher({
    stateDir: path.join(tmp.dir, 'state'),
    log: memoryLogger(),
    redact: (t) => t,
  });
  const problems = await dispatcher.setNotifiers(
    [
      notifierConfig('email', ['slow'], {
        transport: `smtp://127.0.0.1:${smtp.port}`,
        from: 'staging@example.com',
        to: ['ops@example.com'],
        committers: true,
      }),
    ],
    new Map(),
    {},
  );
  expect(problems).toEqual([]);
});
afterEach(async () => {
  await dispatcher.close();
  await smtp.close();
  tmp.cleanup();
});

/** A watch over a history of job runs (newest first) on a clock the test moves. */
function watch(history: BuildRecord[]) {
  const clock = { now: T0 };
  const slow = new SlowWatch({
    history: () => history,
    send: (n) => void dispatcher.enqueue(n, ['slow'], n.branch),
    logUrl: (b, _kind, id) => `http://stage.example.com/api/branches/${b}/jobs/sync/runs/${id}/log`,
    now: () => clock.now,
  });
  return { clock, slow };
}

const finished = (id: number, durationMs: number): BuildRecord => ({
  ...run(id, 0),
  startedAt: new Date(T0).toISOString(),
  durationMs,
});

test('median and threshold: 3x and a minute longer, from at least 5 successful runs', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 2, 3])).toBe(2.5);
  const history = [run(5, 60), run(4, 58, 'failure'), run(3, 62), run(2, 61), run(1, 59)];
  expect(trendOf(history)).toBeNull();
  const trend = trendOf([run(6, 60), ...history])!;
  expect(trend.medianMs).toBe(60 * MIN);
  expect(isSlow(180 * MIN, trend)).toBe(false);
  expect(isSlow(180 * MIN + 1, trend)).toBe(true);
  // A short job needs the minute: 3x of 10 s is not news.
  const short = trendOf([1, 2, 3, 4, 5].map((i) => ({ ...run(i, 0), durationMs: 10_000 })))!;
  expect(isSlow(31_000, short)).toBe(false);
  expect(isSlow(70_001, short)).toBe(true);
});

test('a job at 3x its median is mailed to the operators once, with this run, the median and the last runs', async () => {
  const history = [
    run(7, 60),
    run(6, 62),
    run(5, 58, 'failure'),
    run(4, 59),
    run(3, 61),
    run(2, 60),
  ];
  const { clock, slow } = watch(history);
  // Still running past 3x (the daemon restarted, say): the check mails while it runs.
  clock.now = T0 + 181 * MIN;
  slow.started('staging', { id: 8, kind: 'job:sync', startedAt: new Date(T0).toISOString() });
  const [mail] = await smtp.waitFor(1);
  // Ending later does not mail the same run twice.
  slow.finished('staging', finished(8, 200 * MIN));
  await dispatcher.flush();
  expect(smtp.mails).toHaveLength(1);
  expect(mail.rcpt).toEqual(['ops@example.com']);
  const { headers, text } = parseMail(mail.raw);
  expect(headers.subject).toBe('[stagepost] staging SLOW job sync #8');
  expect(text).toContain(
    'Job sync on staging, run #8 has run 3h01m so far, more than three times its median of 1h00m (3.0x).',
  );
  expect(text).toMatch(
    /The last 6 runs before it:\n\s+#7\s+SUCCESS\s+1h00m\n\s+#6\s+SUCCESS\s+1h02m\n\s+#5\s+FAILED\s+58m00s/,
  );
  expect(text).toContain(
    'Full log: http://stage.example.com/api/branches/staging/jobs/sync/runs/8/log',
  );
});

test('a run that ends past the threshold is mailed then; one below it is not; a much faster one is a line for the next mail', async () => {
  const history = [run(6, 60), run(5, 60), run(4, 60), run(3, 60), run(2, 60)];
  const { slow } = watch(history);
  slow.finished('staging', finished(7, 179 * MIN));
  await dispatcher.flush();
  expect(smtp.mails).toHaveLength(0);
  slow.finished('staging', finished(8, 185 * MIN));
  const [mail] = await smtp.waitFor(1);
  expect(parseMail(mail.raw).text).toContain('run #8 took 3h05m, more than three times');
  slow.finished('staging', finished(9, 15 * MIN));
  expect(slow.takeNotes('staging')).toEqual([
    'staging: job sync #9 took 15m00s, much faster than its median of 1h00m',
  ]);
  expect(slow.takeNotes('staging')).toEqual([]);
  slow.finished('staging', finished(10, 21 * MIN));
  expect(slow.takeNotes('staging')).toEqual([]);
  await dispatcher.flush();
  expect(smtp.mails).toHaveLength(1);
});

test("the much-faster lines ride along in the branch's next mail", async () => {
  await dispatcher.setNotifiers(
    [
      notifierConfig('email', ['failure'], {
        transport: `smtp://127.0.0.1:${smtp.port}`,
        from: 'staging@example.com',
        to: ['ops@example.com'],
      }),
    ],
    new Map(),
    {},
  );
  await dispatcher.enqueue(
    buildDraft({
      trends: ['staging: job sync #9 took 15m00s, much faster than its median of 1h00m'],
    }),
    ['failure'],
    'branch1',
  );
  const [mail] = await smtp.waitFor(1);
  expect(parseMail(mail.raw).text).toContain(
    'Much faster than usual:\n  staging: job sync #9 took 15m00s, much faster than its median of 1h00m',
  );
});
