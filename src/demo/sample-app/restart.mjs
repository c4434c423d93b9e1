// The demo's stand-in for `supervisorctl restart all`: end this branch site's
// running app server, start the freshly built one, and wait until it answers.
//
// The server is started in its own session with its output in a file: a child
// left in the step's process group, or holding the step's pipes, would be
// killed with the step or keep the step from ending.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync, rmSync } from 'node:fs';

const PID_FILE = 'var/app-server.pid';
const port = appPort();

function appPort() {
  if (process.env.STAGEPOST_PORT) return Number(process.env.STAGEPOST_PORT);
  // Without STAGEPOST_PORT from stagepost, the demo's own list of ports
  // ("staging=8752 branch1=8753 ...", set in the demo's environment) says it.
  const pair = (process.env.DEMO_APP_PORTS ?? '')
    .split(' ')
    .find((p) => p.startsWith(`${process.env.STAGEPOST_BRANCH}=`));
  if (!pair) {
    console.error(
      'restart: no port for this branch (neither STAGEPOST_PORT nor DEMO_APP_PORTS names it)',
    );
    process.exit(1);
  }
  return Number(pair.split('=')[1]);
}

// A server that ended but was not reaped yet (its parent, this script's earlier
// run, is gone and init may be slow to reap) is a zombie: as good as ended.
const zombie = (pid) => {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
const alive = (pid) => {
  try {
    process.kill(-pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  return !zombie(pid);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopOld() {
  let pid;
  try {
    pid = Number(readFileSync(PID_FILE, 'utf8'));
  } catch {
    return;
  }
  if (!(pid > 1) || !alive(pid)) return;
  console.log(`stopping app server ${pid}`);
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    /* gone already */
  }
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(PID_FILE, { force: true });
}

async function answering() {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

await stopOld();
mkdirSync('var', { recursive: true });
const out = openSync('var/app-server.log', 'a');
const child = spawn(process.execPath, ['bin/app-server.mjs'], {
  detached: true,
  stdio: ['ignore', out, out],
  env: { ...process.env, APP_PORT: String(port) },
});
writeFileSync(PID_FILE, `${child.pid}\n`);
let exited = null;
child.on('exit', (code, signal) => {
  exited = signal ?? code;
});
child.unref();

for (let i = 0; i < 100 && exited === null; i++) {
  if (await answering()) {
    console.log(`app server ${child.pid} answers on port ${port}`);
    process.exit(0);
  }
  await sleep(100);
}
console.error(
  `app server did not come up on port ${port} (${exited === null ? 'no answer' : `exited: ${exited}`}); see var/app-server.log`,
);
process.exit(1);
