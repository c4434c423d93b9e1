import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { memoryLogger } from '../../src/log.js';
import webhookPlugin from '../../plugins/webhook/index.js';
import { tempDir } from '../helpers/tmp.js';
import { buildDraft, notifierConfig } from './helpers.js';

const TOKEN = 'tok-9f8e7d6c5b4a';

/** A real HTTP endpoint on 127.0.0.1 whose answer the test chooses. */
async function startHook() {
  const received: Array<{
    url: string;
    headers: IncomingMessage['headers'];
    body: Record<string, unknown>;
  }> = [];
  let status = 200;
  let hang = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (hang) return;
      received.push({
        url: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'busy');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook/${TOKEN}`,
    received,
    answer(code: number) {
      status = code;
    },
    hangUp(value: boolean) {
      hang = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('webhook and log notifiers', () => {
  let tmp: ReturnType<typeof tempDir>;
  let hook: Awaited<ReturnType<typeof startHook>>;
  let dispatcher: NotifyDispatcher;
  let log: ReturnType<typeof memoryLogger>;
  beforeEach(async () => {
    tmp = tempDir();
    hook = await startHook();
    log = memoryLogger();
    dispatcher = new NotifyDispatcher({
      stateDir: tmp.dir,
      log,
      redact: (t) => t.replaceAll(TOKEN, '[secure]'),
      retryBaseMs: 3_600_000,
    });
  });
  afterEach(async () => {
    await dispatcher.close();
    await hook.close();
    tmp.cleanup();
  });

  it('POSTs the notification as JSON with a one-line text', async () => {
    await dispatcher.setNotifiers(
      [
        notifierConfig('webhook', ['failure', 'fixed'], {
          url: hook.url,
          headers: { 'x-team': 'karl' },
        }),
      ],
      new Map(),
    );
    await dispatcher.dispatch(buildDraft(), ['failure', 'still-failing'], 'branch1');
    expect(hook.received).toHaveLength(1);
    const { url, headers, body } = hook.received[0];
    expect(url).toBe(`/hook/${TOKEN}`);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-team']).toBe('karl');
    expect(body).toMatchObject({
      type: 'build',
      event: 'failure',
      events: ['failure'],
      branch: 'branch1',
      build: { id: 12, result: 'failure', failedStep: 'buildout' },
    });
    expect(body.text).toBe('[stagepost] branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812');
  });

  it('keeps the message on a non-2xx answer and delivers it once the endpoint recovers; the token stays out of the outbox and the log', async () => {
    hook.answer(503);
    await dispatcher.setNotifiers(
      [notifierConfig('webhook', ['failure'], { url: hook.url })],
      new Map(),
    );
    await dispatcher.dispatch(buildDraft(), ['failure']);
    expect(dispatcher.outboxSize()).toBe(1);
    const files = readdirSync(path.join(tmp.dir, 'outbox')).filter((f) => f.endsWith('.json'));
    expect(readFileSync(path.join(tmp.dir, 'outbox', files[0]), 'utf8')).not.toContain(TOKEN);
    const warning = log.lines.find(
      (l) => l.msg === 'notification delivery failed; kept in the outbox for retry',
    );
    expect(warning?.error).toMatch(/answered 503: busy/);
    expect(JSON.stringify(log.lines)).not.toContain(TOKEN);

    hook.answer(204);
    await dispatcher.flush();
    await dispatcher.flush();
    expect(hook.received.map((r) => r.body.event)).toEqual(['failure', 'failure']);
    expect(dispatcher.outboxSize()).toBe(0);
  });

  it('fails a delivery that outlives its timeout and keeps the message', async () => {
    hook.hangUp(true);
    await dispatcher.setNotifiers(
      [notifierConfig('webhook', ['failure'], { url: hook.url, timeout: '200ms' })],
      new Map(),
    );
    await dispatcher.dispatch(buildDraft(), ['failure']);
    expect(dispatcher.outboxSize()).toBe(1);
    expect(
      log.lines.find((l) => l.msg === 'notification delivery failed; kept in the outbox for retry')
        ?.error,
    ).toMatch(/webhook POST to http:\/\/127\.0\.0\.1:\d+ failed/);
  });

  it('validates its options', () => {
    const validate = (options: Record<string, unknown>) => webhookPlugin.validate!(options);
    expect(validate({ url: 'https://chat.example.com/hook', timeout: '5s' })).toEqual([]);
    expect(
      validate({ url: 'ftp://x', timeout: 'soon', header: {} }).map((p) => p.path.join('.')),
    ).toEqual(['header', 'url', 'timeout']);
  });

  it('log notifier: one line per notification in the daemon log', async () => {
    await dispatcher.setNotifiers(
      [notifierConfig('log', ['failure', 'config-error'], {})],
      new Map(),
    );
    await dispatcher.dispatch(buildDraft(), ['failure'], 'branch1');
    await dispatcher.dispatch(
      { type: 'config', file: '/srv/stagepost/ci.yaml', message: 'ci.yaml:3: unknown key' },
      ['config-error'],
    );
    const lines = log.lines.filter((l) => l.msg === 'notification');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        notifier: 'log',
        branch: 'branch1',
        build: 12,
        result: 'failure',
        title: 'branch1 FAILED (buildout) karl@3f2a9c1 osfkarl@r4812',
      }),
      expect.objectContaining({
        level: 'warn',
        title: 'CONFIG ERROR ci.yaml',
        error: 'ci.yaml:3: unknown key',
      }),
    ]);
  });
});
