import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotifyDispatcher, type DispatcherOptions } from '../../src/notify/dispatcher.js';
import { createLogger, memoryLogger } from '../../src/log.js';
import type { NotifierConfig } from '../../src/config/types.js';
import type { EventName } from '../../src/plugin-api.js';
import { tempDir } from '../helpers/tmp.js';
import { buildDraft, notifierConfig } from './helpers.js';

const FIXTURES = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'plugins',
);
const fixture = (name: string) => path.join(FIXTURES, name);

describe('NotifyDispatcher', () => {
  let tmp: ReturnType<typeof tempDir>;
  const open: NotifyDispatcher[] = [];
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
    tmp.cleanup();
  });

  function make(options: Partial<DispatcherOptions> = {}) {
    const log = memoryLogger();
    const d = new NotifyDispatcher({
      stateDir: path.join(tmp.dir, 'state'),
      log,
      redact: (t) => t,
      retryBaseMs: 3_600_000,
      ...options,
    });
    open.push(d);
    return { d, log };
  }
  const sink = (name = 'sent.jsonl') => path.join(tmp.dir, name);
  const sent = (name = 'sent.jsonl') =>
    existsSync(sink(name))
      ? readFileSync(sink(name), 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  const recorder = (on: EventName[], file = sink(), line = 10): NotifierConfig =>
    notifierConfig(fixture('notifier.js'), on, { file }, line);
  const outboxFiles = () => {
    const dir = path.join(tmp.dir, 'state', 'outbox');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  };

  it('delivers through a third-party notifier loaded from a path, with the events its `on` picks', async () => {
    const { d } = make();
    expect(await d.setNotifiers([recorder(['failure', 'still-failing'])], new Map())).toEqual([]);
    await d.dispatch(buildDraft(), ['failure', 'still-failing'], 'branch1');
    await d.dispatch(buildDraft(), ['success']);
    expect(sent()).toEqual([
      { type: 'build', events: ['failure', 'still-failing'], branch: 'branch1' },
    ]);
    expect(d.outboxSize()).toBe(0);
  });

  it('reports broken notifiers with their file and line and keeps delivering through the others', async () => {
    const { d, log } = make();
    const problems = await d.setNotifiers(
      [
        notifierConfig(fixture('throws-on-import.js'), ['failure'], {}, 30),
        notifierConfig(fixture('wrong-shape.js'), ['failure'], {}, 31),
        notifierConfig(fixture('notifier.js'), ['failure'], { fil: 'typo' }, 32),
        notifierConfig('git', ['failure'], {}, 33),
        notifierConfig(
          'email',
          ['failure'],
          { transport: 'ftp://x', from: 'a@example.com', to: 'b@example.com' },
          34,
        ),
        recorder(['failure'], sink(), 35),
      ],
      new Map(),
    );
    expect(problems.map((p) => p.code)).toEqual([
      'EPLUGIN',
      'EPLUGIN',
      'EPLUGIN',
      'EPLUGIN',
      'EPLUGIN',
    ]);
    expect(problems[0].message).toContain('/srv/stagepost/ci.yaml:30: notify: plugin');
    expect(problems[0].message).toContain('fixture plugin exploded while loading');
    expect(problems[1].message).toMatch(/^\/srv\/stagepost\/ci\.yaml:31: .*create\(\) is missing/);
    expect(problems[2].message).toMatch(
      /^\/srv\/stagepost\/ci\.yaml:32: notify \(.*notifier\.js\): file: give a file to append to/,
    );
    expect(problems[3].message).toMatch(
      /^\/srv\/stagepost\/ci\.yaml:33: notify \(git\): "git" is a vcs plugin, not a notifier/,
    );
    expect(problems[4].message).toMatch(
      /^\/srv\/stagepost\/ci\.yaml:34: notify \(email\): transport: unknown transport/,
    );
    expect(
      log.lines
        .filter((l) => l.msg === 'notifier disabled: it could not be loaded')
        .map((l) => l.line),
    ).toEqual([30, 31, 32, 33, 34]);

    await d.dispatch(buildDraft(), ['failure']);
    expect(sent()).toHaveLength(1);
  });

  it('never throws out of dispatch when a plugin throws in prepare or deliver', async () => {
    const { d, log } = make();
    await d.setNotifiers(
      [
        notifierConfig(fixture('throws-in-prepare.js'), ['failure'], {}, 40),
        notifierConfig(fixture('failing.js'), ['failure'], {}, 41),
        recorder(['failure'], sink(), 42),
      ],
      new Map(),
    );
    await expect(d.dispatch(buildDraft(), ['failure'])).resolves.toBeUndefined();
    expect(sent()).toHaveLength(1);
    expect(log.lines.find((l) => l.msg === 'notifier could not prepare a message')).toMatchObject({
      line: 40,
      error: 'fixture prepare bug',
    });
    expect(d.outboxSize()).toBe(1);
    expect(outboxFiles()).toHaveLength(1);
  });

  it('logs a notifier that keeps failing on its first failure and every 10th, not each time', async () => {
    const { d, log } = make();
    await d.setNotifiers([notifierConfig(fixture('failing.js'), ['failure'], {}, 41)], new Map());
    for (let i = 0; i < 12; i++) await d.dispatch(buildDraft({ build: { id: i } }), ['failure']);
    const warnings = log.lines.filter(
      (l) => l.msg === 'notification delivery failed; kept in the outbox for retry',
    );
    expect(warnings.map((w) => w.failures)).toEqual([1, 10]);
    expect(d.outboxSize()).toBe(12);
  });

  it('delivers each message exactly once however many flushes and retry timers race', async () => {
    const target = path.join(tmp.dir, 'not-yet', 'sent.jsonl');
    const { d } = make({ retryBaseMs: 1, retryMaxMs: 2 });
    await d.setNotifiers([recorder(['failure'], target)], new Map());
    await d.dispatch(buildDraft(), ['failure']);
    await d.dispatch(buildDraft({ build: { id: 13 } }), ['failure']);
    expect(d.outboxSize()).toBe(2);
    mkdirSync(path.dirname(target));
    await Promise.all([d.flush(), d.flush(), d.flush(), d.flush()]);
    await d.flush();
    expect(readFileSync(target, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(d.outboxSize()).toBe(0);
    expect(outboxFiles()).toEqual([]);
  });

  it('flush() waits for a delivery a retry timer started until its outbox file is gone', async () => {
    // The retry's delivery succeeds and logs its recovery before it removes the
    // file: a flush() asked at that very moment must still wait for the removal.
    const target = path.join(tmp.dir, 'not-yet', 'sent.jsonl');
    let filesAtRecovery: string[] = [];
    let filesWhenFlushed: (files: string[]) => void = () => undefined;
    const flushed = new Promise<string[]>((resolve) => {
      filesWhenFlushed = resolve;
    });
    const log = createLogger({
      level: 'debug',
      format: 'json',
      write: (line) => {
        if (JSON.parse(line).msg !== 'notification delivery works again') return;
        filesAtRecovery = outboxFiles();
        void d.flush().then(() => filesWhenFlushed(outboxFiles()));
      },
    });
    const { d } = make({ log, retryBaseMs: 1, retryMaxMs: 1 });
    await d.setNotifiers([recorder(['failure'], target)], new Map());
    await d.dispatch(buildDraft(), ['failure']);
    expect(outboxFiles()).toHaveLength(1);
    mkdirSync(path.dirname(target));
    expect(await flushed).toEqual([]);
    expect(filesAtRecovery).toHaveLength(1);
    expect(readFileSync(target, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('routes a branch to its own notifiers, anything else to the global ones', async () => {
    const { d } = make();
    const global = recorder(['failure'], sink('global.jsonl'), 10);
    const own = recorder(['failure'], sink('own.jsonl'), 50);
    await d.setNotifiers(
      [global],
      new Map([
        ['branch1', [global, own]],
        ['quiet', []],
      ]),
    );
    await d.dispatch(buildDraft(), ['failure'], 'branch1');
    await d.dispatch(buildDraft({ branch: 'other' }), ['failure'], 'other');
    await d.dispatch(buildDraft({ branch: 'quiet' }), ['failure'], 'quiet');
    await d.dispatch({ type: 'config', file: '/srv/stagepost/ci.yaml', message: 'bad' }, [
      'failure',
    ]);
    expect(sent('global.jsonl').map((m) => m.branch)).toEqual(['branch1', 'other', null]);
    expect(sent('own.jsonl').map((m) => m.branch)).toEqual(['branch1']);
  });

  it('keeps messages of a notifier that is no longer configured, warns once, and sends them when it is back', async () => {
    const target = path.join(tmp.dir, 'later', 'sent.jsonl');
    const config = recorder(['failure'], target, 10);
    const first = make();
    await first.d.setNotifiers([config], new Map());
    await first.d.dispatch(buildDraft(), ['failure']);
    await first.d.dispatch(buildDraft({ build: { id: 13 } }), ['failure']);
    await first.d.close();
    mkdirSync(path.dirname(target));

    const second = make();
    await second.d.setNotifiers([recorder(['failure'], sink(), 11)], new Map());
    await second.d.start();
    await second.d.flush();
    expect(second.d.outboxSize()).toBe(2);
    expect(outboxFiles()).toHaveLength(2);
    expect(
      second.log.lines.filter(
        (l) =>
          l.msg ===
          'outbox message for a notifier that is not configured (any more); kept until it is',
      ),
    ).toHaveLength(1);

    await second.d.setNotifiers([config], new Map());
    await second.d.flush();
    expect(readFileSync(target, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(outboxFiles()).toEqual([]);
  });

  it('loads a factory plugin and gives it the context', async () => {
    const { d, log } = make();
    expect(
      await d.setNotifiers([notifierConfig(fixture('factory.js'), ['started'], {})], new Map()),
    ).toEqual([]);
    await d.dispatch(buildDraft(), ['started']);
    expect(log.lines.find((l) => l.msg === 'fixture factory delivered')).toMatchObject({
      notifier: fixture('factory.js'),
      message: { events: ['started'] },
    });
  });

  it('moves a message aside after retrying for too long, and reports unreadable outbox files', async () => {
    const { d, log } = make({ giveUpAfterMs: -1 });
    await d.setNotifiers([notifierConfig(fixture('failing.js'), ['failure'], {})], new Map());
    await d.dispatch(buildDraft(), ['failure']);
    expect(d.outboxSize()).toBe(0);
    expect(readdirSync(path.join(tmp.dir, 'state', 'outbox', 'undeliverable'))).toHaveLength(1);
    expect(
      log.lines.some((l) => l.msg === 'notification given up after retrying for too long'),
    ).toBe(true);

    writeFileSync(path.join(tmp.dir, 'state', 'outbox', 'garbage.json'), '{"half": ');
    const restarted = make();
    await restarted.d.start();
    expect(
      restarted.log.lines.find((l) => l.msg === 'outbox file unreadable; left in place'),
    ).toMatchObject({ file: path.join(tmp.dir, 'state', 'outbox', 'garbage.json') });
    expect(existsSync(path.join(tmp.dir, 'state', 'outbox', 'garbage.json'))).toBe(true);
  });
});
