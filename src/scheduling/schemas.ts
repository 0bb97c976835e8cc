/** The payload of the `due-job` jobs the scanner puts on the active-schedule-triggered queue (versioned). */
import { z } from 'zod';
import { dueJobKinds } from '../db/dueJob';

export const dueJobJobName = 'due-job';

const objectIdString = z.string().regex(/^[0-9a-f]{24}$/);

/**
 * The claim as the scanner made it: the firing starts from it instead of reading the due job again
 * (every write it makes is guarded by this claim; what could make it stale is checked before firing).
 */
export const dueJobClaimSchema = z.object({
  claimedAt: z.iso.datetime(),
  kind: z.enum(dueJobKinds),
  taskId: z.string().optional(),
  reminderId: z.string().optional(),
  /** The occurrence (absent on due jobs written before occurrences were recorded). */
  thresholdAt: z.iso.datetime().optional(),
  attempts: z.number().int().min(0),
});

export const dueJobPayloadSchema = z.object({
  v: z.literal(1),
  dueJobId: objectIdString,
  /** The occurrence's triggerAt (ISO); the job id is derived from it. */
  triggerAt: z.iso.datetime(),
  /** Absent on jobs enqueued before claims travelled with them: the firing reads the due job. */
  claim: dueJobClaimSchema.optional(),
});
export type DueJobPayload = z.infer<typeof dueJobPayloadSchema>;
export type DueJobClaimPayload = z.infer<typeof dueJobClaimSchema>;

/** One BullMQ job per claim of an occurrence: `due-<dueJobId>-<triggerAt ms>` (BullMQ ids must not contain ':'). */
export const dueJobJobId = (dueJobId: string, triggerAt: Date) => `due-${dueJobId}-${triggerAt.getTime()}`;
