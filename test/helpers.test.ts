import { tempDir } from './helpers/tmp.js';
import { makeGitRemote } from './helpers/git.js';
import { makeSvnRemote } from './helpers/svn.js';
import { hasTool, describeIf } from './helpers/tools.js';

test('git helper makes commits on a bare remote', () => {
  const t = tempDir();
  try {
    const r = makeGitRemote(t.dir);
    const a = r.commit('main');
    const b = r.commit('feature');
    expect(r.head('main')).toBe(a);
    expect(r.head('feature')).toBe(b);
  } finally {
    t.cleanup();
  }
});

describeIf(hasTool('svnadmin'))('svn helper', () => {
  test('commits and copies', () => {
    const t = tempDir();
    try {
      const r = makeSvnRemote(t.dir);
      const r1 = r.commit('trunk', 'one', { author: 'chris' });
      const r2 = r.copy('trunk', 'branches/b1');
      expect(Number(r2)).toBeGreaterThan(Number(r1));
    } finally {
      t.cleanup();
    }
  });
});
