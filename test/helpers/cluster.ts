import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { freePort } from '../plugins/vcs-helpers.js';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DaemonProcess } from './cli.js';
import { isGitQuery } from './git.js';
import { until } from './wait.js';
import type { StatusDocument } from '../../src/api.js';

/**
 * Hosts of a cluster as `stagepost run` children on this machine: one
 * ci.yaml, each host with its own name (STAGEPOST_HOST), state_dir
 * (`state-{host}`) and HTTP port. Every git they start goes through a
 * wrapper that writes `<host> <args>` to a file, so the queries of the
 * whole cluster can be counted.
 */
export interface TestCluster {
  hosts: Record<string, DaemonProcess>;
  ports: Record<string, number>;
  /** (Re)start a host, with another ci.yaml if given. */
  start(host: string, configFile?: string): DaemonProcess;
  status(host: string): Promise<StatusDocument>;
  /** Remote queries (ls-remote) of the whole cluster (or one host) so far. */
  queries(host?: string): number;
  /** Waits until the status on `host` satisfies `check`. */
  waitStatus(
    host: string,
    check: (s: StatusDocument) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<StatusDocument>;
  stopAll(): Promise<void>;
}

/** A `git` first in PATH that logs its host and arguments, then runs the real git. */
export function gitWrapper(dir: string): { bin: string; log: string } {
  const bin = path.join(dir, 'wrapped-bin');
  mkdirSync(bin, { recursive: true });
  const log = path.join(dir, 'git-calls.log');
  writeFileSync(log, '');
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  writeFileSync(
    path.join(bin, 'git'),
    `#!/bin/sh\nprintf '%s %s\\n' "$STAGEPOST_HOST" "$*" >> "$GIT_CALLS_LOG"\nexec ${JSON.stringify(real)} "$@"\n`,
  );
  chmodSync(path.join(bin, 'git'), 0o755);
  return { bin, log };
}

export async function startCluster(
  configFile: string,
  names: string[],
  databaseUrl: string,
): Promise<TestCluster> {
  const dir = path.dirname(configFile);
  const wrapper = gitWrapper(dir);
  const ports: Record<string, number> = {};
  for (const name of names) ports[name] = await freePort();
  const hosts: Record<string, DaemonProcess> = {};
  const start = (name: string, file = configFile) => {
    hosts[name] = new DaemonProcess(
      file,
      {
        STAGEPOST_HOST: name,
        STAGEPOST_DATABASE_URL: databaseUrl,
        GIT_CALLS_LOG: wrapper.log,
        PATH: `${wrapper.bin}:${process.env.PATH ?? ''}`,
      },
      [],
      ['--http-port', String(ports[name])],
    );
    return hosts[name];
  };
  for (const name of names) start(name);
  const status = async (name: string): Promise<StatusDocument> => {
    const res = await fetch(`http://127.0.0.1:${ports[name]}/api/status`);
    if (!res.ok) throw new Error(`status of ${name}: HTTP ${res.status}`);
    return (await res.json()) as StatusDocument;
  };
  const cluster: TestCluster = {
    hosts,
    ports,
    start,
    status,
    queries: (host) =>
      readFileSync(wrapper.log, 'utf8')
        .split('\n')
        .map((line) => line.split(' '))
        .filter(([who, ...command]) => isGitQuery(command) && (!host || who === host)).length,
    async waitStatus(host, check, what, timeoutMs = 30_000) {
      let last: StatusDocument | null = null;
      await until(
        async () => {
          try {
            last = await status(host);
            return check(last);
          } catch {
            return false;
          }
        },
        `${what} (on host ${host})`,
        timeoutMs,
      );
      return last!;
    },
    async stopAll() {
      await Promise.all(Object.values(hosts).map((h) => h.stop()));
    },
  };
  return cluster;
}

/**
 * The top of a test cluster's ci.yaml: a state_dir per host, the database
 * from $STAGEPOST_DATABASE_URL, fast heartbeats and polls, and an HTTP
 * listener whose port each host overrides with `--http-port`.
 */
export function clusterYamlHead(pollSeconds = 1): string {
  return `version: 1
state_dir: ./state-{host}
cluster:
  database: \${STAGEPOST_DATABASE_URL}
  heartbeat: 300ms
poll: { interval: ${pollSeconds}s, quiet: 0s }
`;
}
