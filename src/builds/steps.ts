import type { StepConfig } from '../config/types.js';
import type { BuildResult, StepReport } from '../plugin-api.js';
import { run, describeFailure } from '../util/exec.js';
import { formatDuration } from '../util/duration.js';
import type { LogWriter } from './log-writer.js';

export interface StepRunOptions {
  cwd: string;
  env: Record<string, string>;
  log: LogWriter;
  signal?: AbortSignal;
  /** Record a step's process group; the step starts once this resolves. */
  recordGroup?: (pgid: number) => Promise<void>;
  onStep?: (name: string) => void;
  killGraceMs?: number;
}

export interface StepsOutcome {
  result: BuildResult;
  reports: StepReport[];
  failedStep?: string;
}

/**
 * Runs steps in order with `sh -c` in the branch dir. Values reach a step only
 * through its environment, never through the command text. The first failing
 * step ends the run; the rest are reported `skipped`.
 */
export async function runSteps(
  steps: StepConfig[],
  options: StepRunOptions,
): Promise<StepsOutcome> {
  const reports: StepReport[] = [];
  let result: BuildResult = 'success';
  let failedStep: string | undefined;
  for (const step of steps) {
    if (result !== 'success') {
      reports.push({ name: step.name, result: 'skipped', durationMs: 0 });
      continue;
    }
    options.onStep?.(step.name);
    options.log.line(`==> ${step.name}: ${step.run}`);
    const outcome = await run('sh', ['-c', step.run], {
      cwd: options.cwd,
      env: { ...inheritedEnvironment(), ...options.env },
      timeoutMs: step.timeoutMs,
      killGraceMs: options.killGraceMs ?? 5000,
      signal: options.signal,
      onOutput: (chunk) => options.log.output(chunk),
      beforeStart: options.recordGroup,
      maxBuffer: 64 * 1024,
    });
    const stepResult: BuildResult = outcome.timedOut
      ? 'timeout'
      : outcome.aborted
        ? 'interrupted'
        : outcome.exitCode === 0
          ? 'success'
          : 'failure';
    const report: StepReport = {
      name: step.name,
      result: stepResult,
      durationMs: outcome.durationMs,
      exitCode: outcome.exitCode,
    };
    if (stepResult !== 'success') report.reason = describeFailure(outcome);
    reports.push(report);
    options.log.line(
      `<== ${step.name}: ${stepResult}${report.reason ? ` (${report.reason})` : ''} in ${formatDuration(outcome.durationMs)}`,
    );
    if (stepResult !== 'success') {
      result = stepResult;
      failedStep = step.name;
    }
  }
  return { result, reports, failedStep };
}

/** What a step keeps of the daemon's environment (SPEC "Environment of steps and jobs"). */
const KEPT = /^(PATH|HOME|LANG|LC_[A-Z_]+|TZ)$/;

/**
 * The allow-listed part of the daemon's environment. Everything else stays
 * out — the notifiers' passwords, the HTTP token, an operator's database
 * URL — and what a step needs besides is named in ci.yaml's `env`.
 */
export function inheritedEnvironment(from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  for (const [key, value] of Object.entries(from))
    if (KEPT.test(key) && value !== undefined) env[key] = value;
  return env;
}
