import type { BranchConfig, Config } from '../config/types.js';
import type { EventName, Notification } from '../plugin-api.js';
import { createLogger, type Logger } from '../log.js';
import { resolveConfigPath } from '../config/load.js';
import { loadAndRemember, loadForReading, rejectionNote } from '../config/last-good.js';
import { StateStore } from '../state/store.js';
import { VcsRegistry } from '../vcs.js';
import { createPluginContext } from '../plugin-loader/context.js';
import { Poller } from '../poll/poller.js';
import { missingRefError } from '../poll/missing.js';
import { NotifyDispatcher } from '../notify/dispatcher.js';
import { redactor } from '../util/redact.js';
import { forgetEnvironment } from '../util/forget-env.js';
import { StagepostError } from '../errors.js';
import type { BuildContext } from '../builds/context.js';

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
  options: { notify?: boolean; log?: Logger; readOnly?: boolean; forgetSecrets?: boolean } = {},
): Promise<Session> {
  const log = options.log ?? createLogger();
  const file = resolveConfigPath(configFlag, process.env, process.cwd());
  // A command that only reads (poll) goes on with the last good config after a rejected edit.
  const config = options.readOnly
    ? await loadForReading(file, process.env).then(({ config, rejected }) => {
        if (rejected) process.stderr.write(`${rejectionNote(rejected)}\n`);
        return config;
      })
    : await loadAndRemember(file, process.env);
  // Steps run by this command are its children: like the daemon, it keeps
  // ci.yaml's secrets out of the environment they could read through
  // /proc/$PPID/environ. Only for commands that load ci.yaml no more.
  if (options.forgetSecrets) {
    const { names, procError } = forgetEnvironment(config.secretNames);
    if (procError)
      log.warn({ names, error: procError }, 'cannot blank secrets in /proc/self/environ');
  }
  const store = new StateStore(config.stateDir, {
    onDamage: (d) =>
      log.error(
        { file: d.file, movedTo: d.movedTo, problem: d.problem },
        'state file damaged; moved aside and started afresh',
      ),
  });
  await store.init();
  const vcs = new VcsRegistry(createPluginContext(config.stateDir, log));
  const pollErrors = new Map<string, string>();
  const poller = new Poller({
    vcs,
    log,
    tracks: store.readPoll().tracks,
    persist: () => undefined,
    events: {
      changed: () => undefined,
      polled: (branches, error) => {
        for (const b of branches) {
          const branch = config.branches.find((x) => x.name === b);
          // A ref that is gone is a poll error of its branch, though the remote answered.
          const own = error ?? (branch ? missingRefError(branch, poller.tracks) : null);
          if (own) pollErrors.set(b, own);
        }
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
