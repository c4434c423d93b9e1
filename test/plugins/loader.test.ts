import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPlugin } from '../../src/plugin-loader/loader.js';
import { BUILTIN_PLUGINS } from '../../src/plugin-loader/registry.js';
import { ROOT } from '../helpers/cli.js';
import { memoryLogger } from '../../src/log.js';
import { StagepostError } from '../../src/errors.js';
import { run } from '../../src/util/exec.js';
import type { NotifierPlugin } from '../../src/plugin-api.js';

const FIXTURES = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'plugins',
);
const fixture = (name: string) => path.join(FIXTURES, name);
const where = { file: '/srv/ci.yaml', line: 23, what: 'notify[2]' };

function context() {
  return {
    log: memoryLogger(),
    stateDir: '/tmp/stagepost-loader-state',
    redact: (t: string) => t.replace(/hunter2/g, '[secure]'),
    run,
    sshWords: () => ({ base: ['ssh'], sharing: [] }),
  };
}

async function loadError(use: string): Promise<StagepostError> {
  const err = await loadPlugin(use, context(), where).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StagepostError);
  expect((err as StagepostError).code).toBe('EPLUGIN');
  return err as StagepostError;
}

describe('plugin registry', () => {
  const folders = readdirSync(path.join(ROOT, 'plugins'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);

  it('registers every folder of plugins/', () => {
    expect(folders.length).toBeGreaterThanOrEqual(5);
    expect([...BUILTIN_PLUGINS.values()].sort()).toEqual([...folders].sort());
  });

  it.each([...BUILTIN_PLUGINS.keys()])(
    'built-in "%s" loads as a complete plugin named after its folder',
    async (name) => {
      const plugin = await loadPlugin(name, context(), where);
      expect(plugin.name).toBe(name);
      expect(['vcs', 'notifier']).toContain(plugin.kind);
    },
  );

  it('built-in plugins reach the core only through stagepost/plugin-api, as a third party does', () => {
    const pluginsDir = path.join(ROOT, 'plugins');
    const files = readdirSync(pluginsDir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(pluginsDir, f));
    expect(files.length).toBeGreaterThan(10);
    const outside: string[] = [];
    for (const file of files) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)) {
        const leaves = spec.startsWith('.')
          ? !path.resolve(path.dirname(file), spec).startsWith(pluginsDir + path.sep)
          : spec.startsWith('stagepost') && spec !== 'stagepost/plugin-api';
        if (leaves) outside.push(`${path.relative(ROOT, file)}: ${spec}`);
      }
    }
    expect(outside).toEqual([]);
  });
});

describe('loadPlugin', () => {
  it('loads a third-party notifier by absolute path', async () => {
    const plugin = (await loadPlugin(fixture('notifier.js'), context(), where)) as NotifierPlugin;
    expect(plugin).toMatchObject({ kind: 'notifier', name: 'fixture-notifier' });
    expect(plugin.validate!({})).toEqual([{ path: ['file'], message: 'give a file to append to' }]);
  });

  it('calls a factory export with the plugin context (async factories too)', async () => {
    const ctx = context();
    const plugin = await loadPlugin(fixture('factory.js'), ctx, where);
    expect(plugin).toMatchObject({
      kind: 'notifier',
      name: 'fixture-factory',
      stateDir: ctx.stateDir,
    });
  });

  it('returns the same module on a second load', async () => {
    const a = await loadPlugin(fixture('notifier.js'), context(), where);
    const b = await loadPlugin(fixture('notifier.js'), context(), where);
    expect(a).toBe(b);
  });

  it('names file, line and entry when a module throws on import', async () => {
    const err = await loadError(fixture('throws-on-import.js'));
    expect(err.message).toContain(
      `/srv/ci.yaml:23: notify[2]: plugin "${fixture('throws-on-import.js')}" could not be loaded: fixture plugin exploded while loading`,
    );
    expect(err.message).toContain('check the path/package name');
  });

  it('reports a missing path and a missing package', async () => {
    expect((await loadError(fixture('nope.js'))).message).toMatch(
      /^\/srv\/ci\.yaml:23: notify\[2\]: plugin ".*nope\.js" could not be loaded: .* check the path/,
    );
    expect((await loadError('stagepost-plugin-that-does-not-exist')).message).toContain(
      'plugin "stagepost-plugin-that-does-not-exist" could not be loaded',
    );
  });

  it('rejects a wrong shape, saying what is missing', async () => {
    const err = await loadError(fixture('wrong-shape.js'));
    expect(err.message).toContain('/srv/ci.yaml:23: notify[2]: plugin');
    expect(err.message).toContain('create() is missing');
  });

  it('rejects an export that is not a plugin at all', async () => {
    // A package without a default export plugin: node:path's namespace.
    const err = await loadError('node:path');
    expect(err.message).toContain('kind is');
  });
});
