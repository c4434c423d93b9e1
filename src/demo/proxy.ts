import http from 'node:http';

/**
 * The demo's stand-in for the nginx server block of `stagepost proxy-config`:
 * `<base_url>/<branch>/<customer>/…` is passed to
 * `http://127.0.0.1:<port of branch>/<customer>/…`, so the customer links of
 * the dashboard lead to the branch sites' app servers.
 */
export interface SiteProxy {
  url: string;
  close(): Promise<void>;
}

export function startSiteProxy(port: number, apps: Record<string, number>): Promise<SiteProxy> {
  const server = http.createServer((req, res) => {
    const match = /^\/([^/?]+)(\/.*)?$/.exec(req.url ?? '/');
    const branch = match?.[1];
    const appPort = branch ? apps[branch] : undefined;
    if (!branch || appPort === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(
        `no branch site here; try ${Object.keys(apps)
          .map((b) => `/${b}/`)
          .join(' ')}\n`,
      );
      return;
    }
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: appPort,
        method: req.method,
        path: match?.[2] ?? '/',
        headers: {
          ...req.headers,
          'x-forwarded-prefix': `/${branch}`,
          'x-forwarded-host': req.headers.host ?? '',
          'x-forwarded-proto': 'http',
        },
        timeout: 10_000,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('error', () => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`the ${branch} app server does not answer (not built yet, or its build failed)\n`);
    });
    req.pipe(upstream);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    );
  });
}
