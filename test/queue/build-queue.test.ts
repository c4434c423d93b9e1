import { BuildQueue, type QueueItem } from '../../src/queue/build-queue.js';

/** A runner whose items finish when the test says so. */
function controlled() {
  const started: QueueItem[] = [];
  const finishers: Array<() => void> = [];
  let notify: () => void = () => undefined;
  const runner = (item: QueueItem) =>
    new Promise<void>((resolve) => {
      started.push(item);
      finishers.push(resolve);
      notify();
    });
  const nextStart = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (started.length >= n) resolve();
        else notify = check;
      };
      check();
    });
  return { started, finishers, runner, nextStart };
}

test('a waiting branch is queued once; requests join it', () => {
  const c = controlled();
  const q = new BuildQueue(1, c.runner);
  expect(q.request({ branch: 'a', kind: 'build', force: false })).toBe('queued');
  expect(q.request({ branch: 'b', kind: 'build', force: false })).toBe('queued');
  expect(q.request({ branch: 'b', kind: 'build', force: true })).toBe('joined');
  expect(q.waitingItems()).toEqual([{ branch: 'b', kind: 'build', force: true }]);
});

test('requests during a build give exactly one more build', async () => {
  const c = controlled();
  const q = new BuildQueue(1, c.runner);
  q.request({ branch: 'a', kind: 'build', force: false });
  await c.nextStart(1);
  for (let i = 0; i < 4; i++)
    expect(q.request({ branch: 'a', kind: 'build', force: false })).toBe('again');
  c.finishers[0]();
  await c.nextStart(2);
  c.finishers[1]();
  await q.idle();
  expect(c.started.map((i) => i.branch)).toEqual(['a', 'a']);
});

test('never two items of one branch at once, and at most `concurrency` overall', async () => {
  const c = controlled();
  const q = new BuildQueue(2, c.runner);
  q.request({ branch: 'a', kind: 'build', force: false });
  q.request({ branch: 'a', kind: 'job:sync', force: false });
  q.request({ branch: 'b', kind: 'build', force: false });
  q.request({ branch: 'c', kind: 'build', force: false });
  await c.nextStart(2);
  expect(c.started.map((i) => `${i.kind}@${i.branch}`)).toEqual(['build@a', 'build@b']);
  expect(q.runningCount()).toBe(2);
  c.finishers[0](); // a's build done: a's job may start now (c waits for a slot after it)
  await c.nextStart(3);
  expect(c.started[2]).toMatchObject({ branch: 'a', kind: 'job:sync' });
  c.finishers[1]();
  await c.nextStart(4);
  expect(c.started[3]).toMatchObject({ branch: 'c' });
  c.finishers[2]();
  c.finishers[3]();
  await q.idle();
});

test('removed branches leave the queue; paused queues start nothing', async () => {
  const c = controlled();
  const q = new BuildQueue(1, c.runner);
  q.request({ branch: 'a', kind: 'build', force: false });
  q.request({ branch: 'b', kind: 'build', force: false });
  q.remove('b');
  expect(q.waitingItems()).toEqual([]);
  await c.nextStart(1);
  q.pause();
  q.request({ branch: 'c', kind: 'build', force: false });
  c.finishers[0]();
  await q.idle();
  expect(c.started.map((i) => i.branch)).toEqual(['a']);
});
