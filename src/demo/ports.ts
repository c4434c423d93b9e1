import net from 'node:net';

/**
 * Ports for the demo's listeners. Each prefers a port next to the dashboard's
 * (easy to read in ci.yaml) and falls back to one the system picks when that
 * port is taken, so a busy machine (or a parallel test) does not break the demo.
 */
export interface DemoPorts {
  dashboard: number;
  /** The demo's stand-in for the nginx front end: `<base_url>`. */
  proxy: number;
  apps: Record<string, number>;
  smtp: number;
}

function listenOn(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const got = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(got));
    });
  });
}

async function pick(preferred: number, taken: Set<number>): Promise<number> {
  if (
    preferred > 0 &&
    preferred < 65536 &&
    !taken.has(preferred) &&
    (await listenOn(preferred)) !== null
  ) {
    taken.add(preferred);
    return preferred;
  }
  for (;;) {
    const port = await listenOn(0);
    if (port !== null && !taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

/** Whether the dashboard port the user asked for can be listened on. */
export async function portFree(port: number): Promise<boolean> {
  return port === 0 || (await listenOn(port)) !== null;
}

/** `dashboard` is used as given (the user asked for it); 0 means any free port. */
export async function choosePorts(dashboard: number, branches: string[]): Promise<DemoPorts> {
  const taken = new Set<number>([dashboard]);
  if (dashboard === 0) dashboard = await pick(0, taken);
  const proxy = await pick(dashboard + 1, taken);
  const apps: Record<string, number> = {};
  for (const [i, b] of branches.entries()) apps[b] = await pick(dashboard + 2 + i, taken);
  const smtp = await pick(dashboard + 2 + branches.length, taken);
  return { dashboard, proxy, apps, smtp };
}
