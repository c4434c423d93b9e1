import type { PluginContext, VcsPlugin } from './plugin-api.js';
import { loadPlugin } from './plugin-loader/loader.js';
import { StagepostError } from './errors.js';

/**
 * VCS plugins by the `vcs` name of a source. One instance per name for the
 * life of the process, so per-plugin caches (svn repository roots, ssh
 * control sockets) survive config reloads.
 */
export class VcsRegistry {
  private readonly plugins = new Map<string, Promise<VcsPlugin>>();
  constructor(private readonly ctx: PluginContext) {}

  get(
    vcs: string,
    where: { file: string; line: number } = { file: 'ci.yaml', line: 0 },
  ): Promise<VcsPlugin> {
    let plugin = this.plugins.get(vcs);
    if (!plugin) {
      plugin = loadPlugin(vcs, this.ctx, where).then((p) => {
        if (p.kind !== 'vcs')
          throw new StagepostError(
            'EPLUGIN',
            `${where.file}:${where.line}: "${vcs}" is a ${p.kind} plugin, not a VCS plugin — use git, svn or a VCS plugin's path`,
          );
        return p;
      });
      plugin.catch(() => this.plugins.delete(vcs));
      this.plugins.set(vcs, plugin);
    }
    return plugin;
  }
}
