import path from 'node:path';
import type { BranchConfig, Config } from '../config/types.js';
import type { EventName, Notification } from '../plugin-api.js';
import { createLogger, type Logger } from '../log.js';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import { StateStore } from '../state/store.js';
import { VcsRegistry } from '../vcs.js';
import { Poller } from '../poll/poller.js';
import { NotifyDispatcher } from '../notify/dispatcher.js';
import { redactor } from '../util/redact.js';
import { StagepostError } from '../errors.js';
import type { BuildContext } from '../build/builder.js';

/**
 * What a foreground command (`update`, `poll`, `create`, `job`) needs: the
 * config, the state, the VCS plugins, a poller without timers, notifiers.
 */
export interface Session {
  config: Config;
  store: StateStore;
  vcs: VcsRegistry;
  poller: Poller;
  log: Logger;
  dispatcher: NotifyDispatcher | null;
  pollErrors: Map<string, string>;
  branch(name: string): BranchConfig;
  buildContext(extra?: Partial<BuildContext>): BuildContext;
  close(): Promise<void>;
}

export async function openSession(
  configFlag: string | undefined,
  options: { notify?: boolean; log?: Logger } = {},
): Promise<Session> {
  const log = options.log ?? createLogger();
  const file = resolveConfigPath(configFlag, process.env, process.cwd());
  const config = await loadConfig(file, process.env);
  const store = new StateStore(config.stateDir, {
    onDamage: (d) =>
      log.error(
        { file: d.file, movedTo: d.movedTo, problem: d.problem },
        'state file damaged; moved aside and started afresh',
      ),
  });
  await store.init();
  const vcs = new VcsRegistry({
    log,
    stateDir: path.join(config.stateDir, 'plugins'),
    redact: (t) => redactor.redact(t),
  });
  const pollErrors = new Map<string, string>();
  const poller = new Poller({
    vcs,
    log,
    tracks: store.readPoll().tracks,
    persist: () => undefined,
    events: {
      changed: () => undefined,
      polled: (branches, error) => {
        if (error) for (const b of branches) pollErrors.set(b, error);
      },
    },
  });
  let dispatcher: NotifyDispatcher | null = null;
  if (options.notify) {
    dispatcher = new NotifyDispatcher({
      stateDir: config.stateDir,
      log,
      redact: (t: string) => redactor.redact(t),
    });
    await dispatcher.setNotifiers(
      config.notify,
      new Map(config.branches.map((b) => [b.name, b.notify] as const)),
      {
        authorsDomain: config.authorsDomain,
        httpUrl: config.http?.publicUrl,
        configDir: config.dir,
      },
    );
  }
  const notify = (n: Omit<Notification, 'events'>, events: EventName[]) => {
    return dispatcher?.enqueue(n, events, (n as { branch?: string }).branch);
  };
  return {
    config,
    store,
    vcs,
    poller,
    log,
    dispatcher,
    pollErrors,
    branch(name) {
      const b = config.branches.find((x) => x.name === name);
      if (!b)
        throw new StagepostError(
          'ENOBRANCH',
          `branch "${name}" is not in ${config.file} — known branches: ${config.branches.map((x) => x.name).join(', ') || '(none)'}`,
        );
      return b;
    },
    buildContext(extra = {}) {
      return {
        config,
        store,
        vcs,
        log,
        track: (key) => poller.tracks[key],
        notify: (n, events) => notify(n, events),
        httpUrl: config.http?.publicUrl,
        ...extra,
      };
    },
    async close() {
      poller.stop();
      if (dispatcher) {
        await Promise.race([
          dispatcher.flush(),
          new Promise((r) => setTimeout(r, 10_000).unref?.()),
        ]);
        await dispatcher.close();
      }
    },
  };
}
