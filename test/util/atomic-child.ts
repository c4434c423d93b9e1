// Run by atomic.test.ts under `prlimit --fsize` with SIGXFSZ ignored, so that
// writes past the limit fail with EFBIG as they would on a full disk.
import { writeFileAtomic } from '../../src/util/atomic.js';
import { StateStore, emptyBranchState } from '../../src/state/store.js';

const [dir, size] = process.argv.slice(2);
const results: Record<string, string> = {};
try {
  await writeFileAtomic(`${dir}/big.json`, Buffer.alloc(Number(size), 'x'));
  results.atomic = 'written';
} catch (err) {
  results.atomic = (err as NodeJS.ErrnoException).code ?? 'error';
}
const store = new StateStore(dir);
await store.init();
const state = { ...emptyBranchState(), subjects: { app: 'x'.repeat(Number(size)) } };
try {
  await store.writeBranch('b1', state);
  results.store = 'written';
} catch (err) {
  results.store = (err as NodeJS.ErrnoException).code ?? 'error';
}
process.stdout.write(JSON.stringify(results));
