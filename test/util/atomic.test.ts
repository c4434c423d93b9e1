/**
 * A write that fails half-way (a full disk) leaves neither a torn file nor a
 * 0-byte temp file behind (issue 16, point 3). The failure is real: the child
 * runs with a file-size limit (RLIMIT_FSIZE), so its writes fail with EFBIG.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { hasTool } from '../helpers/tools.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

test('a write past the file-size limit fails with EFBIG and leaves the old file and no temp file', () => {
  if (!hasTool('prlimit')) return;
  const t = tempDir('stagepost-atomic-');
  try {
    writeFileSync(path.join(t.dir, 'big.json'), 'old');
    const limit = 1024 * 1024;
    const out = execFileSync(
      'bash',
      [
        '-c',
        // An ignored SIGXFSZ stays ignored across exec: the write returns EFBIG instead of killing.
        `trap '' XFSZ; exec prlimit --fsize=${limit} "$0" --import tsx "$1" "$2" "$3"`,
        process.execPath,
        path.join(HERE, 'atomic-child.ts'),
        t.dir,
        String(limit * 2),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(JSON.parse(out)).toEqual({ atomic: 'EFBIG', store: 'ESTATE' });
    const names = readdirSync(t.dir, { recursive: true }).map(String);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(names).not.toContain(path.join('branches', 'b1.json'));
    expect(names).toContain('big.json');
  } finally {
    t.cleanup();
  }
});
