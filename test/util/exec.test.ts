import { existsSync } from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/exec.js';
import { tempDir } from '../helpers/tmp.js';
import { pidFromFile } from '../helpers/wait.js';
import { processAlive } from '../helpers/tools.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

test('beforeStart holds the command until its process group is recorded', async () => {
  const marker = path.join(t.dir, 'ran');
  let startedEarly: boolean | null = null;
  let recorded = -1;
  const result = await run('sh', ['-c', 'echo $$ > "$0"', marker], {
    timeoutMs: 10_000,
    beforeStart: async (pgid) => {
      await new Promise((r) => setTimeout(r, 200));
      startedEarly = existsSync(marker);
      recorded = pgid;
    },
  });
  expect(result.exitCode).toBe(0);
  expect(startedEarly).toBe(false);
  // The command ran as the recorded group leader, with no stdin to wait on.
  const { readFileSync } = await import('node:fs');
  expect(Number(readFileSync(marker, 'utf8'))).toBe(recorded);
});

test('a rejected beforeStart ends the group before the command runs', async () => {
  const marker = path.join(t.dir, 'ran');
  let pgid = -1;
  const result = await run('sh', ['-c', 'touch "$0"', marker], {
    timeoutMs: 10_000,
    beforeStart: (p) => {
      pgid = p;
      return Promise.reject(new Error('disk full'));
    },
  });
  expect(result.exitCode).not.toBe(0);
  expect(existsSync(marker)).toBe(false);
  expect(processAlive(pgid)).toBe(false);
});

test('a timeout ends the whole process group, grandchildren included', async () => {
  const pidFile = path.join(t.dir, 'child.pid');
  const result = await run('sh', ['-c', 'sleep 60 & echo $! > "$0"; sleep 60', pidFile], {
    // Long enough for a loaded machine to reach the `echo`.
    timeoutMs: 1500,
    killGraceMs: 500,
  });
  expect(result.timedOut).toBe(true);
  expect(processAlive(await pidFromFile(pidFile, 0))).toBe(false);
});
