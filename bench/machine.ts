import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** The machine and tool versions the figures were measured on. */
export function machineLines(): string[] {
  const version = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'not installed';
    }
  };
  const cpus = os.cpus();
  return [
    `machine: ${cpus[0]?.model ?? 'unknown cpu'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    `node ${process.version}, ${version('git', ['--version'])}, svn ${version('svn', ['--version', '--quiet'])}`,
  ];
}
