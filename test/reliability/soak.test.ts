/**
 * The soak of issue 16: 20 branches build their commits while the dashboard
 * port takes an idle-connection flood and two branches' mail catchers take a
 * flood of SMTP clients. Every commit is built, and the daemon's memory and
 * fd count stay flat: fds and RSS read from /proc, and the heap it really
 * holds read through its inspector after a full collection, every 2 s.
 * (RSS alone moved by 30 MB from one run to the next with GC timing; the
 * collections keep it still, and the live heap is what a leak would grow.)
 * Bounded: about 30 s of load.
 */
import net from 'node:net';
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { isBuildFinished, type LogEvent } from '../helpers/cli.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { INSPECT_ARGS, Inspector } from '../helpers/inspector.js';
import { Daemons, RECORD_STEPS, gitBranchYaml, lines, writeCi } from './helpers.js';

const BRANCHES = Array.from({ length: 20 }, (_, i) => `b${String(i + 1).padStart(2, '0')}`);
const LOAD_MS = 20_000;

const daemons = new Daemons();
let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir('stagepost-soak-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

const mean = (xs: number[]) => xs.reduce((n, x) => n + x, 0) / xs.length;

function sample(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssKb, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Keep `n` idle connections open to the port, opening a new one whenever the server closes one. */
function idleFlood(port: number, n: number, stop: { done: boolean }): { opened: number } {
  const stats = { opened: 0 };
  const open = () => {
    if (stop.done) return;
    stats.opened += 1;
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.on('close', () => setTimeout(open, 50));
    stopList.push(s);
  };
  for (let i = 0; i < n; i++) open();
  return stats;
}
const stopList: net.Socket[] = [];

/** `clients` SMTP clients sending 256 KB messages to the port in a loop. */
async function catcherFlood(port: number, clients: number, stop: { done: boolean }) {
  let sent = 0;
  let failed = 0;
  const body = 'y'.repeat(1000) + '\n';
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stop.done) {
        const transport = nodemailer.createTransport({
          host: '127.0.0.1',
          port,
          secure: false,
          ignoreTLS: true,
        });
        try {
          await transport.sendMail({
            from: 'app@example.com',
            to: 'someone@example.com',
            subject: `flood ${sent}`,
            text: body.repeat(256),
          });
          sent += 1;
        } catch {
          failed += 1;
          await new Promise((r) => setTimeout(r, 100));
        } finally {
          transport.close();
        }
      }
    }),
  );
  return { sent, failed };
}

test('20 branches build every commit under an idle-connection flood and a catcher flood; memory and fds flat', async () => {
  const remote = makeGitRemote(t.dir);
  for (const b of BRANCHES) remote.commit(b);
  const httpPort = await freePort();
  const smtpPorts = [await freePort(), await freePort()];
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}http:
  listen: ${httpPort}
branches:
${BRANCHES.map((b, i) => gitBranchYaml(b, remote.url, b, i < 2 ? `    smtp_port: ${smtpPorts[i]}\n` : '')).join('')}`,
    {
      poll: '{ interval: 300ms, timeout: 5s }',
      builds: '{ concurrency: 2, step_timeout: 30s, shutdown_grace: 300ms }',
    },
  );
  const d = daemons.start(file, {}, INSPECT_ARGS);
  const inspector = await Inspector.attach(d);
  for (const b of BRANCHES) await d.waitFor(isBuildFinished(b), { what: `first build of ${b}` });
  const pid = d.child.pid!;
  const baseline = sample(pid);
  const heapBase = await inspector.liveHeapBytes();
  const heaps: number[] = [];

  const stop = { done: false };
  const idle = idleFlood(httpPort, 300, stop);
  const mail = Promise.all(smtpPorts.map((p) => catcherFlood(p, 4, stop)));
  const samples: Array<{ rssKb: number; fds: number }> = [];
  const sampler = setInterval(() => samples.push(sample(pid)), 500);
  const last: Record<string, string> = {};
  const started = Date.now();
  let round = 0;
  while (Date.now() - started < LOAD_MS) {
    round += 1;
    for (const b of BRANCHES) last[b] = remote.commit(b, `round ${round} on ${b}`);
    await new Promise((r) => setTimeout(r, 2000));
    heaps.push(await inspector.liveHeapBytes());
    await new Promise((r) => setTimeout(r, 2000));
    heaps.push(await inspector.liveHeapBytes());
  }
  stop.done = true;
  for (const s of stopList.splice(0)) s.destroy();
  const mailed = await mail;
  clearInterval(sampler);

  // Every branch builds its last commit (earlier ones of a round may be coalesced).
  for (const b of BRANCHES)
    await d.waitFor(
      (e: LogEvent) =>
        e.msg === 'build started' &&
        e.branch === b &&
        JSON.stringify(e.revisions).includes(last[b].slice(0, 7)),
      { what: `${b} built its last commit`, timeoutMs: 20_000 },
    );
  await d.waitFor(() => lines(path.join(t.dir, 'sites', BRANCHES[19], 'builds.txt')).length > 1);
  for (const b of BRANCHES)
    await d.waitFor(
      () =>
        lines(path.join(t.dir, 'sites', b, 'builds.txt'))
          .pop()
          ?.endsWith(last[b]) === true,
      { what: `${b} recorded its last commit` },
    );
  await new Promise((r) => setTimeout(r, 1500));
  const after = sample(pid);
  const heapAfter = await inspector.liveHeapBytes();
  inspector.close();
  const peak = samples.reduce((a, s) => ({
    rssKb: Math.max(a.rssKb, s.rssKb),
    fds: Math.max(a.fds, s.fds),
  }));
  // Flat under load: the last third of the samples is no higher than the middle third.
  const third = Math.floor(samples.length / 3);
  const rss = samples.map((x) => x.rssKb);
  const trendKb = mean(rss.slice(2 * third)) - mean(rss.slice(third, 2 * third));
  const report = {
    trendKb: Math.round(trendKb),
    rounds: round,
    baseline,
    peak,
    after,
    idleConnectionsOpened: idle.opened,
    mails: mailed,
    heapKb: { base: heapBase >> 10, during: heaps.map((h) => h >> 10), after: heapAfter >> 10 },
  };
  console.log(JSON.stringify(report));
  expect(mailed.reduce((n, m) => n + m.sent, 0)).toBeGreaterThan(20);
  expect(idle.opened).toBeGreaterThan(300);
  // fds: capped during the flood (256 http + catcher clients + build children), back after it.
  expect(peak.fds).toBeLessThan(baseline.fds + 256 + 100);
  expect(after.fds).toBeLessThanOrEqual(baseline.fds + 10);
  // Live heap: no trend while the load goes on, and back to where it was after it.
  const half = Math.floor(heaps.length / 2);
  expect(mean(heaps.slice(half)) - mean(heaps.slice(0, half))).toBeLessThan(4 * 1024 * 1024);
  expect(heapAfter - heapBase).toBeLessThan(4 * 1024 * 1024);
  // RSS: no trend while the load goes on, and no large step from it.
  expect(trendKb).toBeLessThan(20 * 1024);
  expect(after.rssKb - baseline.rssKb).toBeLessThan(80 * 1024);
  expect(peak.rssKb - baseline.rssKb).toBeLessThan(150 * 1024);
  expect(d.child.exitCode).toBeNull();
}, 60_000);
