import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { renderProxyConfig } from '../../site/proxy-config.js';

/** `stagepost proxy-config [--listen ADDR:PORT] [--http]`: the nginx server block. */
export async function proxyConfigCommand(opts: {
  config?: string;
  listen?: string;
  http?: boolean;
}): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  process.stdout.write(renderProxyConfig(config, { listen: opts.listen, http: opts.http }));
  return 0;
}
