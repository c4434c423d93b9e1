import { readFileSync } from 'node:fs';
import { StateStore, emptyBranchState } from '../../src/state/store.js';
import { tempDir } from '../helpers/tmp.js';

test('writes of a branch file land in the order they were asked for, each with its content at call time', async () => {
  const t = tempDir();
  try {
    const store = new StateStore(t.dir);
    await store.init();
    const state = emptyBranchState();
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 50; i++) {
      state.nextId = i;
      writes.push(store.writeBranch('b1', state));
    }
    await Promise.all(writes);
    expect(JSON.parse(readFileSync(store.branchFile('b1'), 'utf8')).nextId).toBe(50);
    expect(store.readBranch('b1').nextId).toBe(50);
  } finally {
    t.cleanup();
  }
});
