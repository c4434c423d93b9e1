import { z } from 'zod';

/**
 * The shapes of the state files, checked on every read: a file edited by
 * hand or damaged on disk is caught here, not deep in a build. Objects are
 * loose so that fields a newer version adds survive a read and a write.
 */
const Revisions = z.record(z.string(), z.string());
const Result = z.enum(['success', 'failure', 'timeout', 'interrupted']);

export const TrackStateSchema = z.looseObject({
  revision: z.string().nullable(),
  missing: z.string().optional(),
  changedAt: z.string(),
});

export const PollFileSchema = z.looseObject({
  version: z.literal(1),
  tracks: z.record(z.string(), TrackStateSchema),
});

const StepReportSchema = z.looseObject({
  name: z.string(),
  result: z.union([Result, z.literal('skipped')]),
  durationMs: z.number(),
});

export const BuildRecordSchema = z.looseObject({
  id: z.number().int().positive(),
  kind: z.string(),
  result: Result.nullable(),
  startedAt: z.string(),
  durationMs: z.number().nullable(),
  forced: z.boolean(),
  failedStep: z.string().optional(),
  steps: z.array(StepReportSchema),
  revisions: Revisions,
});

const RunningBuildSchema = z.looseObject({
  id: z.number().int().positive(),
  kind: z.string(),
  startedAt: z.string(),
  forced: z.boolean(),
  revisions: Revisions,
  pgids: z.array(z.number().int()),
  pid: z.number().int(),
});

export const BranchStateSchema = z.looseObject({
  attempted: Revisions.default({}),
  built: Revisions.default({}),
  subjects: Revisions.default({}),
  nextId: z.number().int().positive().default(1),
  builds: z.array(BuildRecordSchema).default([]),
  jobs: z
    .record(
      z.string(),
      z.looseObject({
        nextId: z.number().int().positive(),
        runs: z.array(BuildRecordSchema),
      }),
    )
    .default({}),
  running: RunningBuildSchema.nullable().default(null),
  forcePending: z.boolean().optional(),
  pendingNotification: z
    .looseObject({
      notification: z.looseObject({ type: z.enum(['build', 'job']), branch: z.string() }),
      events: z.array(z.string()),
    })
    .optional(),
});

export const LockInfoSchema = z.looseObject({
  pid: z.number().int().positive(),
  purpose: z.string(),
  since: z.string(),
});
