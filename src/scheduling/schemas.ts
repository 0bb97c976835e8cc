/** The payload of the `due-job` jobs the scanner puts on the active-schedule-triggered queue (versioned). */
import { z } from 'zod';

export const dueJobJobName = 'due-job';

export const dueJobPayloadSchema = z.object({
  v: z.literal(1),
  dueJobId: z.string().regex(/^[0-9a-f]{24}$/),
  /** The occurrence's triggerAt (ISO); the job id is derived from it. */
  triggerAt: z.iso.datetime(),
});
export type DueJobPayload = z.infer<typeof dueJobPayloadSchema>;

/** One BullMQ job per claim of an occurrence: `due-<dueJobId>-<triggerAt ms>` (BullMQ ids must not contain ':'). */
export const dueJobJobId = (dueJobId: string, triggerAt: Date) => `due-${dueJobId}-${triggerAt.getTime()}`;
