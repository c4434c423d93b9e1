import { Cron } from 'croner';
import type { JobConfig } from '../config/types.js';

/** The cron timers of ci.yaml's jobs; a reload replaces them all. */
export class JobSchedule {
  private timers: Cron[] = [];

  constructor(private readonly fire: (job: string) => void) {}

  apply(jobs: JobConfig[]): void {
    this.stop();
    // protect: a run still queued when the next tick comes is not doubled.
    this.timers = jobs.map(
      (job) =>
        new Cron(job.schedule, { timezone: job.timezone, protect: true }, () =>
          this.fire(job.name),
        ),
    );
  }

  stop(): void {
    for (const t of this.timers) t.stop();
    this.timers = [];
  }
}
